"""Sandbox provisioning over HTTP: POST /apps, keys, namespace rules, presence fixtures, stats,
DELETE /apps/{id}, and the sandbox routes' absence on a relay without --sandbox."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from channel_relay.config import Settings
from channel_relay.server import Relay

# A body of the same shape as ably-common's test-app-setup.json `post_apps`, written for the
# project: keys with capabilities (and a field the relay ignores), namespaces with rules (and
# fields it ignores), and a channel with presence fixtures.
APP_BODY: dict[str, Any] = {
    "limits": {"presence": {"maxMembers": 50}},
    "keys": [
        {},
        {"capability": json.dumps({"reports:*": ["subscribe", "history"]})},
        {"capability": json.dumps({"*": ["publish"]}), "revocableTokens": True},
    ],
    "namespaces": [
        {"id": "drafts", "mutableMessages": True},
        {"id": "archive", "persisted": True, "pushEnabled": True},
    ],
    "channels": [
        {
            "name": "archive:roster",
            "presence": [
                {"clientId": "keeper", "data": "on duty"},
                {"clientId": "visitor", "data": "eyJhIjoxfQ==", "encoding": "base64"},
                {"clientId": "robot", "data": '{"beep": true}', "encoding": "json"},
            ],
        }
    ],
}


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(key.encode()).decode()}


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Relay]:
    server = Relay(
        Settings(host="127.0.0.1", port=0, db_path=str(tmp_path / "relay.db"), sandbox=True)
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def create_app(http: aiohttp.ClientSession, relay: Relay) -> dict[str, Any]:
    async with http.post(f"{relay.url}/apps", json=APP_BODY) as resp:
        assert resp.status == 201, await resp.text()
        return await resp.json()


async def test_post_apps_answers_in_the_sandbox_shape(
    sandbox: Relay, http: aiohttp.ClientSession
) -> None:
    app = await create_app(http, sandbox)
    assert isinstance(app["appId"], str) and app["accountId"]
    assert (app["endpoint"], app["port"], app["tls"]) == ("127.0.0.1", sandbox.port, False)
    keys = app["keys"]
    assert len(keys) == 3
    for key in keys:
        assert key["keyStr"] == f"{key['keyName']}:{key['keySecret']}"
        assert key["value"] == key["keySecret"], "ably-python's test set-up reads `value`"
        assert key["keyName"].startswith(app["appId"] + ".")
        assert key["status"] == 0
    # In the order of the body, capabilities as JSON strings.
    assert json.loads(keys[0]["capability"]) == {"*": ["*"]}
    assert sorted(json.loads(keys[1]["capability"])["reports:*"]) == ["history", "subscribe"]
    assert json.loads(keys[2]["capability"]) == {"*": ["publish"]}
    assert [ns["id"] for ns in app["namespaces"]] == ["drafts", "archive"]


async def test_keys_work_at_once_with_their_capabilities(
    sandbox: Relay, http: aiohttp.ClientSession
) -> None:
    app = await create_app(http, sandbox)
    full, readonly, publisher = (k["keyStr"] for k in app["keys"])
    url = f"{sandbox.url}/channels/news/messages"
    async with http.post(url, json={"name": "n", "data": "d"}, headers=basic(full)) as resp:
        assert resp.status == 201
    async with http.post(url, json={"data": "x"}, headers=basic(publisher)) as resp:
        assert resp.status == 201
    async with http.get(url, headers=basic(publisher)) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == 40160
    async with http.post(url, json={"data": "x"}, headers=basic(readonly)) as resp:
        assert (await resp.json())["error"]["code"] == 40160
    async with http.get(
        f"{sandbox.url}/channels/reports:q1/messages", headers=basic(readonly)
    ) as resp:
        assert resp.status == 200


async def publish_and_update(
    http: aiohttp.ClientSession, relay: Relay, key: str, channel: str
) -> dict[str, Any]:
    url = f"{relay.url}/channels/{quote(channel, safe='')}/messages"
    async with http.post(url, json={"name": "n", "data": "v1"}, headers=basic(key)) as resp:
        serial = (await resp.json())["serials"][0]
    body = {"action": 1, "data": "v2"}
    async with http.patch(f"{url}/{serial}", json=body, headers=basic(key)) as resp:
        return {"status": resp.status, **(await resp.json())}


async def test_namespace_rules_apply(sandbox: Relay, http: aiohttp.ClientSession) -> None:
    app = await create_app(http, sandbox)
    key = app["keys"][0]["keyStr"]
    updated = await publish_and_update(http, sandbox, key, "drafts:doc")
    assert updated["status"] == 200 and updated["versionSerial"]
    refused = await publish_and_update(http, sandbox, key, "archive:doc")
    assert refused["status"] == 400 and refused["error"]["code"] == 93002
    # Outside every namespace: as on Ably, mutable messages are off.
    outside = await publish_and_update(http, sandbox, key, "plain")
    assert outside["error"]["code"] == 93002


async def test_presence_fixtures_are_members_and_history(
    sandbox: Relay, http: aiohttp.ClientSession
) -> None:
    app = await create_app(http, sandbox)
    key = app["keys"][0]["keyStr"]
    base = f"{sandbox.url}/channels/{quote('archive:roster', safe='')}/presence"
    async with http.get(base, headers=basic(key)) as resp:
        members = sorted(await resp.json(), key=lambda m: m["clientId"])
    assert [(m["clientId"], m["action"]) for m in members] == [
        ("keeper", 1),
        ("robot", 1),
        ("visitor", 1),
    ]
    assert members[2]["encoding"] == "base64" and members[2]["data"] == "eyJhIjoxfQ=="
    assert len({m["connectionId"] for m in members}) == 1
    async with http.get(f"{base}?clientId=robot", headers=basic(key)) as resp:
        assert [m["clientId"] for m in await resp.json()] == ["robot"]
    async with http.get(f"{base}/history", headers=basic(key)) as resp:
        history = await resp.json()
    assert sorted(m["clientId"] for m in history) == ["keeper", "robot", "visitor"]
    assert {m["action"] for m in history} == {2}


async def test_delete_app_removes_its_data(
    sandbox: Relay, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    app = await create_app(http, sandbox)
    other = await create_app(http, sandbox)
    key, other_key = app["keys"][0]["keyStr"], other["keys"][0]["keyStr"]
    for k in (key, other_key):
        url = f"{sandbox.url}/channels/kept/messages"
        async with http.post(url, json={"data": "x"}, headers=basic(k)) as resp:
            assert resp.status == 201
    stats = [{"intervalId": "2024-05-06:07:08", "inbound": {"rest": {"messages": {"count": 3}}}}]
    async with http.post(f"{sandbox.url}/stats", json=stats, headers=basic(key)) as resp:
        assert resp.status == 201
    # Another app's key may not delete it.
    async with http.delete(f"{sandbox.url}/apps/{app['appId']}", headers=basic(other_key)) as resp:
        assert resp.status == 401
    async with http.delete(f"{sandbox.url}/apps/{app['appId']}", headers=basic(key)) as resp:
        assert resp.status == 204
    async with http.get(f"{sandbox.url}/channels/kept/messages", headers=basic(key)) as resp:
        assert resp.status == 401
    async with http.get(f"{sandbox.url}/channels/kept/messages", headers=basic(other_key)) as resp:
        assert len(await resp.json()) == 1
    db = sqlite3.connect(tmp_path / "relay.db")
    try:
        app_id = app["appId"]
        assert db.execute("SELECT count(*) FROM keys WHERE app_id = ?", (app_id,)).fetchone() == (
            0,
        )
        assert db.execute("SELECT count(*) FROM apps WHERE app_id = ?", (app_id,)).fetchone() == (
            0,
        )
        assert db.execute(
            "SELECT count(*) FROM channels WHERE app_id = ?", (app_id,)
        ).fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM stats WHERE app_id = ?", (app_id,)).fetchone() == (
            0,
        )
        # Only the other app's message, presence rows and idempotency rows remain.
        channels = db.execute("SELECT DISTINCT app_id FROM channels").fetchall()
        assert app_id not in {row[0] for row in channels}
        assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 1
    finally:
        db.close()


async def test_stats_fixtures_are_served_by_interval(
    sandbox: Relay, http: aiohttp.ClientSession
) -> None:
    app = await create_app(http, sandbox)
    key = app["keys"][0]["keyStr"]
    fixtures = [
        {"intervalId": f"2024-05-06:07:0{m}", "inbound": {"realtime": {"messages": {"count": m}}}}
        for m in (1, 2, 3)
    ]
    async with http.post(f"{sandbox.url}/stats", json=fixtures, headers=basic(key)) as resp:
        assert resp.status == 201
    query = "start=2024-05-06:07:01&end=2024-05-06:07:02&direction=forwards"
    async with http.get(f"{sandbox.url}/stats?{query}", headers=basic(key)) as resp:
        items = await resp.json()
    assert [i["intervalId"] for i in items] == ["2024-05-06:07:01", "2024-05-06:07:02"]
    assert items[1]["entries"]["messages.inbound.all.messages.count"] == 2
    async with http.get(
        f"{sandbox.url}/stats?unit=hour&end=2024-05-06:07", headers=basic(key)
    ) as resp:
        (hour,) = await resp.json()
    assert hour["intervalId"] == "2024-05-06:07" and hour["unit"] == "hour"
    assert hour["entries"]["messages.inbound.realtime.messages.count"] == 6
    # As on Ably, a coarser unit counts the whole interval holding start..end.
    query = "unit=hour&start=2024-05-06:07:03&end=2024-05-06:07:03"
    async with http.get(f"{sandbox.url}/stats?{query}", headers=basic(key)) as resp:
        (hour,) = await resp.json()
    assert hour["entries"]["messages.inbound.realtime.messages.count"] == 6


async def test_rules_are_applied_again_after_a_restart(tmp_path: Path) -> None:
    settings = Settings(host="127.0.0.1", port=0, db_path=str(tmp_path / "r.db"), sandbox=True)
    first = Relay(settings)
    await first.start()
    try:
        async with aiohttp.ClientSession() as http:
            app = await create_app(http, first)
    finally:
        await first.stop()
    second = Relay(Settings(host="127.0.0.1", port=0, db_path=str(tmp_path / "r.db")))
    await second.start()
    try:
        key = app["keys"][0]["keyStr"]
        async with aiohttp.ClientSession() as http:
            assert (await publish_and_update(http, second, key, "drafts:a"))["status"] == 200
            refused = await publish_and_update(http, second, key, "archive:a")
            assert refused["error"]["code"] == 93002
    finally:
        await second.stop()


async def test_sandbox_routes_are_off_by_default(relay: Relay) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{relay.url}/apps", json=APP_BODY) as resp:
            assert resp.status == 404
        async with http.post(f"{relay.url}/sandbox/faults", json={}) as resp:
            assert resp.status == 404


async def test_fault_routes(sandbox: Relay, http: aiohttp.ClientSession) -> None:
    app = await create_app(http, sandbox)
    key = app["keys"][0]["keyStr"]
    faults = f"{sandbox.url}/sandbox/faults"
    body = {"type": "fail_publishes", "channel": "c", "count": 1, "code": 40160}
    async with http.post(faults, json=body, headers=basic(key)) as resp:
        assert resp.status == 201
    async with http.get(faults, headers=basic(key)) as resp:
        assert (await resp.json())["publishFailures"]["c"]["remaining"] == 1
    url = f"{sandbox.url}/channels/c/messages"
    async with http.post(url, json={"data": "x"}, headers=basic(key)) as resp:
        assert resp.status == 401 and (await resp.json())["error"]["code"] == 40160
    async with http.post(url, json={"data": "x"}, headers=basic(key)) as resp:
        assert resp.status == 201
    async with http.post(faults, json={"type": "nonsense"}, headers=basic(key)) as resp:
        assert resp.status == 400
    async with http.delete(faults, headers=basic(key)) as resp:
        assert resp.status == 204
