"""Storage faults on the PostgreSQL store: a database that refuses writes (the writer's session
turned read-only, as a failed-over or full server does) and the writer's connection killed.
Publishes are NACKed with 50000 and never ACKed unless durable, reads keep working, nothing
hangs, and the relay recovers by itself; what it serves from memory equals what is stored."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import asyncpg
import pytest
from relay_support import APP_KEY, running_relay

from channel_relay.server import Relay
from channel_relay.store.postgres import PostgresStore

HEADERS = {"Authorization": "Basic " + base64.b64encode(APP_KEY.encode()).decode()}


@pytest.fixture
async def relay(tmp_path: Path, postgres_url: str) -> AsyncIterator[Relay]:
    async with running_relay(tmp_path, store=postgres_url) as server:
        yield server


def _store(relay: Relay) -> PostgresStore:
    assert isinstance(relay.store, PostgresStore)
    return relay.store


async def _read_only(relay: Relay, read_only: bool) -> None:
    """The writer's own session refuses (or takes again) every write."""
    setting = "on" if read_only else "off"
    await _store(relay)._write(
        lambda conn: conn.execute(f"SET SESSION default_transaction_read_only = {setting}")
    )


async def _post(http: aiohttp.ClientSession, relay: Relay, body: Any) -> tuple[int, Any]:
    async with http.post(
        f"{relay.url}/channels/faults/messages", json=body, headers=HEADERS
    ) as resp:
        return resp.status, await resp.json()


async def _get(http: aiohttp.ClientSession, relay: Relay, path: str) -> tuple[int, Any]:
    async with http.get(f"{relay.url}{path}", headers=HEADERS) as resp:
        return resp.status, await resp.json()


async def _history(http: aiohttp.ClientSession, relay: Relay) -> list[Any]:
    status, body = await _get(http, relay, "/channels/faults/messages?direction=forwards")
    assert status == 200, body
    return [m["data"] for m in body]


async def test_a_read_only_database_nacks_writes_serves_reads_and_recovers(
    relay: Relay, http: aiohttp.ClientSession
) -> None:
    _, body = await _post(http, relay, {"data": "Hello"})
    (serial,) = body["serials"]
    await _read_only(relay, True)
    status, body = await _post(http, relay, {"id": "retry-me", "data": "refused"})
    assert (status, body["error"]["code"]) == (500, 50000)
    async with http.patch(
        f"{relay.url}/channels/faults/messages/{quote(serial)}",
        json={"action": 5, "data": " lost"},
        headers=HEADERS,
    ) as resp:
        assert resp.status == 500
    assert (await _get(http, relay, "/readyz"))[0] == 503
    assert await _history(http, relay) == ["Hello"]
    assert (await _get(http, relay, f"/channels/faults/messages/{quote(serial)}"))[1][
        "data"
    ] == "Hello"
    await _read_only(relay, False)
    assert (await _get(http, relay, "/readyz"))[0] == 200
    assert (await _post(http, relay, {"id": "retry-me", "data": "refused"}))[0] == 201
    assert await _history(http, relay) == ["Hello", "refused"]


async def test_a_killed_writer_connection_fails_no_publish_silently_and_is_replaced(
    relay: Relay, http: aiohttp.ClientSession, postgres_url: str
) -> None:
    assert (await _post(http, relay, {"data": "before"}))[0] == 201
    admin = await asyncpg.connect(postgres_url)
    try:
        # Every backend of the relay's database, the writer's among them.
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid != pg_backend_pid()"
        )
    finally:
        await admin.close()
    results = await asyncio.wait_for(
        asyncio.gather(*(_post(http, relay, {"id": f"k{i}", "data": f"k{i}"}) for i in range(5))),
        timeout=60,
    )
    assert all(status in (201, 500) for status, _ in results), results
    # Whatever was refused is stored once by its retry; whatever was ACKed is there.
    for i, (status, _) in enumerate(results):
        if status != 201:
            assert (await _post(http, relay, {"id": f"k{i}", "data": f"k{i}"}))[0] == 201
    assert sorted(await _history(http, relay)) == sorted(["before", *(f"k{i}" for i in range(5))])
