"""Channels come and go with use: reading, subscribing to or asking about a name creates nothing
(neither a row on disk nor, past a sweep, a channel in memory), a key that may not change
messages learns nothing about which serials exist, and idle channels are unloaded."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
from raw_client import connect_raw

from channel_relay.config import Settings
from channel_relay.server import Relay

APP_KEY = "app1.key1:secret1"
ATTACHED = 11

# SQLite only: these tests count the rows in the relay's SQLite file.
ENGINES = ["sqlite"]


def _rows(relay: Relay) -> int:
    db = relay.settings.db_path
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT count(*) FROM channels").fetchone()[0])


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def _call(
    http: aiohttp.ClientSession, relay: Relay, method: str, path: str, auth: str, body: Any = None
) -> tuple[int, Any]:
    async with http.request(
        method, f"{relay.url}{path}", json=body, headers={"Authorization": auth}
    ) as response:
        return response.status, await response.json()


def _basic(key: str = APP_KEY) -> str:
    return "Basic " + base64.b64encode(key.encode()).decode()


async def _subscribe_only_token(http: aiohttp.ClientSession, relay: Relay) -> str:
    key_name = APP_KEY.partition(":")[0]
    status, token = await _call(
        http,
        relay,
        "POST",
        f"/keys/{key_name}/requestToken",
        _basic(),
        {"capability": '{"*":["subscribe"]}'},
    )
    assert status == 200, token
    return token["token"]


async def test_a_subscribe_only_token_creates_no_channel_and_learns_no_serial(
    relay: Relay,
) -> None:
    async with aiohttp.ClientSession() as http:
        status, published = await _call(
            http, relay, "POST", "/channels/real/messages", _basic(), {"data": "x"}
        )
        assert status == 201, published
        (serial,) = published["serials"]
        token = await _subscribe_only_token(http, relay)
        bearer = "Bearer " + base64.b64encode(token.encode()).decode()
        status, members = await _call(http, relay, "GET", "/channels/ghost/presence", bearer)
        assert (status, members) == (200, [])
        # Changing a message is refused the same way whether or not the serial exists.
        for name, target in [("real", serial), ("ghost", serial)]:
            status, refused = await _call(
                http,
                relay,
                "PATCH",
                f"/channels/{name}/messages/{target}",
                bearer,
                {"action": 1, "data": "y"},
            )
            assert (status, refused["error"]["code"]) == (401, 40160), refused
        client, connected = await connect_raw(relay.port, "", "json", accessToken=token)
        try:
            assert connected["action"] == 4, connected
            for name in ("ghost-1", "ghost-2"):
                attached = await client.attach(name)
                assert attached["action"] == ATTACHED, attached
        finally:
            await client.close()
    assert _rows(relay) == 1  # "real" only


async def test_status_history_and_messages_of_a_channel_never_written_create_nothing(
    relay: Relay,
) -> None:
    async with aiohttp.ClientSession() as http:
        status, details = await _call(http, relay, "GET", "/channels/nothing-here", _basic())
        assert status == 200
        # Ably reports a channel active once asked about; asking still creates nothing here.
        assert details["status"]["isActive"] is True
        assert details["status"]["occupancy"]["metrics"]["connections"] == 0
        status, history = await _call(
            http, relay, "GET", "/channels/nothing-here/messages", _basic()
        )
        assert (status, history) == (200, [])
        status, missing = await _call(
            http,
            relay,
            "GET",
            "/channels/nothing-here/messages/01234567890a-0000000000000001",
            _basic(),
        )
        assert (status, missing["error"]["code"]) == (404, 40400)
    assert _rows(relay) == 0
    assert len(relay.channels) == 0


async def test_20000_status_requests_leave_memory_and_disk_at_baseline(relay: Relay) -> None:
    async with aiohttp.ClientSession() as http:

        async def probe(first: int, count: int) -> None:
            for index in range(first, first + count):
                code, _ = await _call(http, relay, "GET", f"/channels/probe-{index}", _basic())
                assert code == 200

        # Warm up the client and the server (connection pools, caches) before the baseline.
        await asyncio.gather(*(probe(-1000 + 50 * w, 50) for w in range(20)))
        baseline = _rss_kib()
        await asyncio.gather(*(probe(1000 * w, 1000) for w in range(20)))
        after = _rss_kib()
    print(
        f"\n20,000 GET /channels/<name>: RSS {baseline} -> {after} KiB, "
        f"{len(relay.channels)} channels loaded, {_rows(relay)} rows"
    )
    assert len(relay.channels) == 0
    assert _rows(relay) == 0
    # A channel object with its caches is several KiB: 20,000 of them would show.
    assert after - baseline < 16 * 1024


async def test_idle_channels_are_unloaded_and_reload_with_their_log(tmp_path: Path) -> None:
    relay = Relay(
        Settings(host="127.0.0.1", port=0, db_path=str(tmp_path / "relay.db"), keys=[APP_KEY])
    )
    await relay.start()
    try:
        async with aiohttp.ClientSession() as http:
            for index in range(200):
                code, _ = await _call(
                    http,
                    relay,
                    "POST",
                    f"/channels/c-{index}/messages",
                    _basic(),
                    {"data": str(index)},
                )
                assert code == 201
            client, _ = await connect_raw(relay.port, APP_KEY, "json")
            try:
                await client.attach("c-0")
                assert len(relay.channels) == 200
                # Two sweeps: the first marks what nobody looked up since, the second unloads it.
                relay.channels.sweep()
                relay.channels.sweep()
                # The attached channel stays; the others are gone from memory, not from disk.
                assert len(relay.channels) == 1
                assert relay.channels.loaded("app1", "c-0") is not None
            finally:
                await client.close()
            code, history = await _call(http, relay, "GET", "/channels/c-7/messages", _basic())
            assert (code, [m["data"] for m in history]) == (200, ["7"])
            code, published = await _call(
                http, relay, "POST", "/channels/c-7/messages", _basic(), {"data": "again"}
            )
            assert code == 201
            assert published["serials"][0] > history[0]["serial"]
    finally:
        await relay.stop()


async def test_an_attach_before_the_first_write_reports_a_serial_before_every_message(
    relay: Relay,
) -> None:
    """Serials of a channel sort in its order (AI Transport and apps compare them): the serial
    an attach to a never-written channel reports sorts before the messages published next,
    even when its log is created within the same millisecond (epochs then differed only by
    their random part, and sorted either way)."""
    client, _ = await connect_raw(relay.port, APP_KEY, "json")
    try:
        first = await client.attach("fresh")
        assert first["action"] == ATTACHED, first
        async with aiohttp.ClientSession() as http:
            code, published = await _call(
                http, relay, "POST", "/channels/fresh/messages", _basic(), {"data": "one"}
            )
        assert code == 201
        assert first["channelSerial"] < published["serials"][0]
    finally:
        await client.close()
