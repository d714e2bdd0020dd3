"""Engine state every node shares, on two relay nodes over one PostgreSQL database: token
revocations and TokenRequest nonces, presence members (with node liveness by lease), and
connection state, so a connection resumes through another node."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from raw_client import connect_raw

from channel_relay.auth.keys import ApiKey
from channel_relay.auth.tokens import create_token_request
from channel_relay.config import Settings
from channel_relay.server import Relay

ENGINES = ["postgresql"]
APP_KEY = "app1.key1:secret1"
KEY_NAME = "app1.key1"
ACK, ATTACH, ATTACHED, MESSAGE, PRESENCE, SYNC = 1, 10, 11, 15, 14, 16
HAS_PRESENCE = 1 << 0
ENTER, LEAVE = 2, 3


@contextlib.asynccontextmanager
async def _nodes(tmp_path: Path, url: str | None) -> AsyncIterator[list[Relay]]:
    """Two relay nodes on one database, with short timers: heartbeats every 200 ms, a lease of
    600 ms, 300 ms of presence grace. Nodes a test stopped already are not stopped again."""
    assert url is not None
    nodes = [
        Relay(
            Settings(
                host="127.0.0.1",
                port=0,
                db_path=str(tmp_path / f"node{i}.db"),
                store=url,
                keys=[APP_KEY],
                max_idle_interval=600,
                presence_grace=300,
            )
        )
        for i in range(2)
    ]
    for node in nodes:
        await node.start()
    try:
        yield nodes
    finally:
        for node in nodes:
            if node.accepting:
                await node.stop()


async def _call(relay: Relay, method: str, path: str, auth: str, body: Any = None) -> Any:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, f"{relay.url}{path}", json=body, headers={"Authorization": auth}) as r,
    ):
        return r.status, await r.json()


def _basic() -> str:
    return "Basic " + base64.b64encode(APP_KEY.encode()).decode()


def _mallory_request() -> dict[str, Any]:
    """A TokenRequest for clientId mallory, as an app's auth server signs one."""
    return create_token_request(
        ApiKey.parse(APP_KEY), now_ms=int(time.time() * 1000), client_id="mallory"
    ).to_dict()


async def _bearer(node: Relay, request: dict[str, Any]) -> str:
    status, token = await _call(node, "POST", f"/keys/{KEY_NAME}/requestToken", "", request)
    assert status == 200, token
    return "Bearer " + base64.b64encode(token["token"].encode()).decode()


async def _revoke_mallory(node: Relay) -> None:
    status, body = await _call(
        node, "POST", f"/keys/{KEY_NAME}/revokeTokens", _basic(), {"targets": ["clientId:mallory"]}
    )
    assert status == 201, body


async def _refused(node: Relay, bearer: str, seconds: float) -> None:
    """`bearer` is refused by `node` as revoked (40141) within `seconds`."""
    deadline = time.monotonic() + seconds
    while (answer := await _call(node, "GET", "/channels/c/messages", bearer))[0] == 200:
        assert time.monotonic() < deadline, "the revoked token still works on this node"
        await asyncio.sleep(0.1)
    status, refused = answer
    assert (status, refused["error"]["code"]) == (401, 40141)


async def test_revocations_and_nonces_hold_on_every_node(
    tmp_path: Path, engine: str | None
) -> None:
    async with _nodes(tmp_path, engine) as (a, b):
        request = _mallory_request()
        bearer = await _bearer(a, request)
        # The same TokenRequest replayed at the other node: its nonce is held in the engine.
        status, replayed = await _call(b, "POST", f"/keys/{KEY_NAME}/requestToken", "", request)
        assert (status, replayed["error"]["code"]) == (401, 40105)
        assert (await _call(b, "GET", "/channels/c/messages", bearer))[0] == 200
        await _revoke_mallory(a)
        # Node b hears of the revocation as it commits (a notification from the engine).
        await _refused(b, bearer, 20)


async def test_a_revocation_made_while_a_node_was_not_listening_is_in_force_once_it_listens(
    tmp_path: Path, engine: str | None
) -> None:
    async with _nodes(tmp_path, engine) as (a, b):
        bearer = await _bearer(a, _mallory_request())
        assert (await _call(b, "GET", "/channels/c/messages", bearer))[0] == 200
        # Both nodes' listening connections cut: the revocation's notification reaches no one.
        admin = await asyncpg.connect(engine)
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
            )
        finally:
            await admin.close()
        await _revoke_mallory(a)
        # Node b reads what it missed as soon as it listens again.
        await _refused(b, bearer, 10)


async def test_a_revocation_another_node_fails_to_read_is_read_again_until_in_force(
    tmp_path: Path, engine: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _nodes(tmp_path, engine) as (a, b):
        bearer = await _bearer(a, _mallory_request())
        assert (await _call(b, "GET", "/channels/c/messages", bearer))[0] == 200
        # Node b's reads of the revocations fail twice (the engine busy, a connection cut)
        # just as the notification of a new one arrives; no other notification follows.
        read = b.store.revocations
        failures = [OSError("connection reset"), TimeoutError()]

        async def failing(after: int) -> Any:
            if failures:
                raise failures.pop(0)
            return await read(after)

        monkeypatch.setattr(b.store, "revocations", failing)
        await _revoke_mallory(a)
        await _refused(b, bearer, 10)
        assert not failures


async def test_a_node_retrying_a_revocation_read_stops_retrying_when_it_stops(
    tmp_path: Path, engine: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _nodes(tmp_path, engine) as (a, b):
        attempts = 0
        retried = asyncio.Event()

        async def failing(after: int) -> Any:
            nonlocal attempts
            attempts += 1
            if attempts == 2:
                retried.set()
            raise OSError("connection reset")

        monkeypatch.setattr(b.store, "revocations", failing)
        await _revoke_mallory(a)
        async with asyncio.timeout(10):
            await retried.wait()
        await b.stop()
        stopped_at = attempts
        await asyncio.sleep(1.5)
        assert attempts == stopped_at


async def test_a_member_entered_on_one_node_is_in_sync_on_another_and_leaves_when_it_dies(
    tmp_path: Path, engine: str | None
) -> None:
    async with _nodes(tmp_path, engine) as (a, b):
        alice, _ = await connect_raw(a.port, APP_KEY, "json", clientId="alice")
        await alice.attach("room")
        await alice.send(
            {"action": PRESENCE, "channel": "room", "msgSerial": 0, "presence": [{"action": ENTER}]}
        )
        await alice.recv_action(ACK)
        status, members = await _call(b, "GET", "/channels/room/presence", _basic())
        assert (status, [m["clientId"] for m in members]) == (200, ["alice"])
        observer, _ = await connect_raw(b.port, APP_KEY, "json", clientId="observer")
        await observer.send({"action": ATTACH, "channel": "room"})
        attached = await observer.recv_action(ATTACHED)
        assert attached["flags"] & HAS_PRESENCE
        sync = await observer.recv_action(SYNC)
        assert [m["clientId"] for m in sync["presence"]] == ["alice"]
        # Node a goes away (its heartbeats stop): node b announces alice's leave once a's
        # lease and the grace period have run out.
        await a.stop()
        await alice.close()
        left = await observer.recv_action(PRESENCE, within=20)
        assert [(m["clientId"], m["action"]) for m in left["presence"]] == [("alice", LEAVE)]
        assert (await _call(b, "GET", "/channels/room/presence", _basic()))[1] == []
        await observer.close()


async def test_a_connection_resumes_through_another_node_and_its_resent_publish_is_stored_once(
    tmp_path: Path, engine: str | None
) -> None:
    async with _nodes(tmp_path, engine) as (a, b):
        client, connected = await connect_raw(a.port, APP_KEY, "json")
        key = connected["connectionDetails"]["connectionKey"]
        await client.attach("moving")
        frame = {
            "action": MESSAGE,
            "channel": "moving",
            "msgSerial": 0,
            "messages": [{"data": "x"}],
        }
        await client.send(frame)
        (serial,) = (await client.recv_action(ACK))["res"][0]["serials"]
        await a.stop()
        client.ws.transport.abort()
        resumed, reconnected = await connect_raw(b.port, APP_KEY, "json", resume=key)
        try:
            assert reconnected["connectionId"] == connected["connectionId"]
            assert "error" not in reconnected, reconnected
            # The ACK was lost with node a, as far as the client knows: it sends it again.
            await resumed.send(frame)
            ack = await resumed.recv_action(ACK)
            assert ack["res"][0]["serials"] == [serial]
        finally:
            await resumed.close()
        status, history = await _call(b, "GET", "/channels/moving/messages", _basic())
        assert (status, [m["serial"] for m in history]) == (200, [serial])


async def test_presence_changes_on_one_node_reach_subscribers_on_another_live(
    tmp_path: Path, engine: str | None
) -> None:
    async with _nodes(tmp_path, engine) as (a, b):
        # The channel is loaded on both nodes before anyone enters.
        observer, _ = await connect_raw(b.port, APP_KEY, "json", clientId="observer")
        await observer.send({"action": ATTACH, "channel": "live"})
        await observer.recv_action(ATTACHED)
        alice, _ = await connect_raw(a.port, APP_KEY, "json", clientId="alice")
        await alice.attach("live")
        for serial, action in enumerate((ENTER, LEAVE)):
            await alice.send(
                {
                    "action": PRESENCE,
                    "channel": "live",
                    "msgSerial": serial,
                    "presence": [{"action": action, "data": "here"}],
                }
            )
            await alice.recv_action(ACK)
            heard = await observer.recv_action(PRESENCE, within=20)
            assert [(m["clientId"], m["action"]) for m in heard["presence"]] == [("alice", action)]
        await alice.close()
        await observer.close()


@pytest.mark.parametrize("written_on_b", [False, True], ids=["new-to-b", "known-to-b"])
async def test_a_presence_change_made_while_a_nodes_listen_connection_was_down_still_reaches_it(
    tmp_path: Path, engine: str | None, written_on_b: bool
) -> None:
    """Whether node b had the channel's log already, or only subscribers waiting for one."""
    assert engine is not None
    async with _nodes(tmp_path, engine) as (a, b):
        observer, _ = await connect_raw(b.port, APP_KEY, "json", clientId="observer")
        await observer.send({"action": ATTACH, "channel": "gap"})
        await observer.recv_action(ATTACHED)
        if written_on_b:
            await observer.send(
                {"action": MESSAGE, "channel": "gap", "msgSerial": 0, "messages": [{"data": "x"}]}
            )
            await observer.recv_action(ACK)
        alice, _ = await connect_raw(a.port, APP_KEY, "json", clientId="alice")
        await alice.attach("gap")
        # Node b's LISTEN connection is cut (nothing else): alice enters before it listens again
        # (it waits half a second before reconnecting), so b never hears the notification.
        admin = await asyncpg.connect(engine)
        try:
            cut = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN %'"
            )
        finally:
            await admin.close()
        assert cut == 2  # both nodes' listeners
        await alice.send(
            {"action": PRESENCE, "channel": "gap", "msgSerial": 0, "presence": [{"action": ENTER}]}
        )
        await alice.recv_action(ACK)
        heard = await observer.recv_action(PRESENCE, within=20)
        assert [(m["clientId"], m["action"]) for m in heard["presence"]] == [("alice", ENTER)]
        await alice.close()
        await observer.close()
