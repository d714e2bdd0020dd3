"""The push admin API against a real relay: what it keeps survives a restart, and who may do
what follows Ably's push-admin and push-subscribe capabilities (ably-js's own use of the API is
in tests/interop/test_interop_push.py)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from channel_relay.config import Settings
from channel_relay.server import Relay

APP_KEY = "app1.key1:secret1"
DEVICE = {
    "id": "phone-1",
    "clientId": "eve",
    "platform": "ios",
    "formFactor": "phone",
    "push": {"recipient": {"transportType": "apns", "deviceToken": "abc"}},
}


def _basic(key: str = APP_KEY) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(key.encode()).decode()}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + base64.b64encode(token.encode()).decode()}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _call(
    http: aiohttp.ClientSession,
    relay: Relay,
    method: str,
    path: str,
    headers: dict[str, str],
    body: Any = None,
    status: int = 200,
) -> Any:
    async with http.request(
        method,
        relay.url + path,
        headers={"Accept": "application/json", **headers},
        data=None if body is None else json.dumps(body),
    ) as resp:
        text = await resp.text()
        assert resp.status == status, text
        return json.loads(text) if text else None


async def test_devices_subscriptions_and_notifications_survive_a_restart(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    settings = Settings(
        host="127.0.0.1", port=0, db_path=str(tmp_path / "relay.db"), keys=[APP_KEY]
    )
    first = Relay(settings)
    await first.start()
    try:
        await _call(http, first, "PUT", "/push/deviceRegistrations/phone-1", _basic(), DEVICE)
        sub = {"channel": "news", "deviceId": "phone-1"}
        await _call(http, first, "POST", "/push/channelSubscriptions", _basic(), sub, 201)
        push = {"recipient": {"clientId": "eve"}, "notification": {"title": "hi"}}
        await _call(http, first, "POST", "/push/publish", _basic(), push, 204)
    finally:
        await first.stop()

    second = Relay(settings)
    await second.start()
    try:
        device = await _call(http, second, "GET", "/push/deviceRegistrations/phone-1", _basic())
        subs = await _call(http, second, "GET", "/push/channelSubscriptions?channel=news", _basic())
        notes = await _call(http, second, "GET", "/push/notifications?deviceId=phone-1", _basic())
    finally:
        await second.stop()
    assert device["push"]["recipient"] == DEVICE["push"]["recipient"]
    assert subs == [sub]
    assert [n["payload"] for n in notes] == [{"notification": {"title": "hi"}}]
    assert notes[0]["recipient"] == {"transportType": "apns", "deviceToken": "abc"}
    # What APNs itself would have been sent.
    assert notes[0]["body"] == {"aps": {"alert": {"title": "hi"}}}
    assert notes[0]["clientId"] == "eve"


async def test_push_subscribe_allows_only_the_callers_own_client_and_device(
    relay: Relay, http: aiohttp.ClientSession
) -> None:
    token = await _call(
        http,
        relay,
        "POST",
        "/keys/app1.key1/requestToken",
        {**_basic(), "Content-Type": "application/json"},
        {"clientId": "eve", "capability": json.dumps({"*": ["push-subscribe"]})},
    )
    eve = _bearer(token["token"])

    for method, path in [
        ("GET", "/push/deviceRegistrations"),
        ("GET", "/push/channels"),
        ("GET", "/push/notifications"),
    ]:
        error = await _call(http, relay, method, path, eve, status=401)
        assert error["error"]["code"] == 40160
    others = {"channel": "news", "clientId": "mallory"}
    error = await _call(http, relay, "POST", "/push/channelSubscriptions", eve, others, 401)
    assert error["error"]["code"] == 40160
    own = {"channel": "news", "clientId": "eve"}
    await _call(http, relay, "POST", "/push/channelSubscriptions", eve, own, 201)

    # Activation gives the device a token with which it manages itself, and nothing else.
    device = await _call(http, relay, "POST", "/push/deviceRegistrations", eve, DEVICE, 201)
    itself = _bearer(device["deviceIdentityToken"]["token"])
    update = {"push": {"recipient": {"transportType": "apns", "deviceToken": "new"}}}
    patched = await _call(http, relay, "PATCH", "/push/deviceRegistrations/phone-1", itself, update)
    assert patched["push"]["recipient"]["deviceToken"] == "new"
    await _call(
        http, relay, "PUT", "/push/deviceRegistrations/other", _basic(), {**DEVICE, "id": "other"}
    )
    error = await _call(http, relay, "GET", "/push/deviceRegistrations/other", itself, status=401)
    assert error["error"]["code"] == 40160
    forged = _bearer("dit.app1.not-a-token")
    error = await _call(http, relay, "GET", "/push/deviceRegistrations/phone-1", forged, status=401)
    assert error["error"]["code"] == 40101

    bad = {**DEVICE, "platform": "not_a_real_platform"}
    error = await _call(http, relay, "POST", "/push/deviceRegistrations", eve, bad, 400)
    assert error["error"]["code"] == 40000


async def test_channel_rules_decide_push_and_annotations(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """As on Ably: push subscriptions are refused (40160) and extras.push notifies nobody on
    channels whose rule does not enable push, and annotations need the rule that enables
    message changes (93002 elsewhere)."""
    settings = Settings(host="127.0.0.1", port=0, db_path=str(tmp_path / "relay.db"), sandbox=True)
    relay = Relay(settings)
    await relay.start()
    try:
        spec = {
            "keys": [{}],
            "namespaces": [{"id": "pushy", "pushEnabled": True, "mutableMessages": True}],
        }
        app = await _call(http, relay, "POST", "/apps", {}, spec, 201)
        auth = _basic(app["keys"][0]["keyStr"])
        await _call(http, relay, "PUT", "/push/deviceRegistrations/phone-1", auth, DEVICE)
        for channel, status in (("plain:news", 401), ("pushy:news", 201)):
            sub = {"channel": channel, "clientId": "eve"}
            out = await _call(http, relay, "POST", "/push/channelSubscriptions", auth, sub, status)
            if status == 401:
                assert out["error"]["code"] == 40160
        pushed = {"name": "n", "extras": {"push": {"notification": {"title": "t"}}}}
        published = {}
        for channel in ("plain:news", "pushy:news"):
            out = await _call(
                http, relay, "POST", f"/channels/{channel}/messages", auth, pushed, 201
            )
            published[channel] = out["serials"][0]
        # The push of a channel message goes out after its publish is ACKed.
        await relay.push.settled()
        notes = await _call(http, relay, "GET", "/push/notifications", auth)
        assert [n["channel"] for n in notes] == ["pushy:news"]

        reaction = {"type": "reactions:total.v1"}
        for channel, status in (("plain:news", 400), ("pushy:news", 201)):
            path = f"/channels/{channel}/messages/{published[channel]}/annotations"
            out = await _call(http, relay, "POST", path, auth, [reaction], status)
            if status == 400:
                assert out["error"]["code"] == 93002
    finally:
        await relay.stop()
