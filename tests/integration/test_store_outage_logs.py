"""PostgreSQL gone from under a relay: each background task that touches the store (connection
state and node liveness, live stats, retention, a channel's catch-up from the log, the cluster
feed's LISTEN, the writer) says so once, with a warning and no traceback, rather than a
traceback at every attempt; and once the server is back, the relay is ready and publishes
again."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from pg_support import PrivateServer, with_database
from raw_client import connect_raw
from relay_support import APP_KEY, running_relay
from store_calls import post

from channel_relay.server import Relay

# How long the server stays away while the log is watched.
OUTAGE_SECONDS = 3.0


@pytest.fixture
async def relay(tmp_path: Path, own_postgres: PrivateServer) -> AsyncIterator[Relay]:
    # Every periodic task at a fast pace, so each has many attempts during the outage:
    # heartbeats (node liveness) every 200 ms, stats flushes and retention passes every 200 ms.
    async with running_relay(
        tmp_path,
        store=own_postgres.url,
        max_idle_interval=600,
        stats_flush_interval=0.2,
        retention_interval=0.2,
    ) as node:
        yield node


async def _until_ready(http: aiohttp.ClientSession, relay: Relay, status: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        async with http.get(f"{relay.url}/readyz") as resp:
            if resp.status == status:
                return
        assert time.monotonic() < deadline, f"/readyz not {status}"
        await asyncio.sleep(0.1)


async def test_an_engine_outage_is_logged_once_per_task_and_the_relay_recovers(
    relay: Relay,
    own_postgres: PrivateServer,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, _ = await connect_raw(relay.port, APP_KEY, "json")
    await client.attach("watched")
    assert (await post(http, relay, "watched", {"data": "before"}))[0] == 201
    caplog.set_level(logging.INFO, logger="channel_relay")
    caplog.set_level(logging.INFO, logger="asyncpg")
    caplog.clear()

    await asyncio.to_thread(own_postgres.stop, "fast")
    await _until_ready(http, relay, 503)
    # As if another node's commit had been heard just before: the channel catches up from the
    # log, retried every half second while the log cannot be read.
    watched = relay.channels.loaded("app1", "watched")
    assert watched is not None
    watched.sequencer.learned(watched.delivered_seq + 1)
    # Publishes are refused meanwhile (the writer's failures are logged too).
    for _ in range(5):
        assert (await post(http, relay, "watched", {"data": "refused"}))[0] == 500
    await asyncio.sleep(OUTAGE_SECONDS)
    # (The requests' own log, a line per refused request, is not a background task's.)
    during = [r for r in caplog.records if r.name != "channel_relay.server"]

    await asyncio.to_thread(own_postgres.start)
    await _until_ready(http, relay, 200)
    deadline = time.monotonic() + 10
    while (await post(http, relay, "watched", {"data": "after"}))[0] != 201:
        assert time.monotonic() < deadline, "publishes not accepted after the outage"
        await asyncio.sleep(0.2)
    await client.close()

    lines = [f"{r.name} {r.levelname} {r.getMessage()}" for r in during]
    assert not [r for r in during if r.exc_info], "\n".join(lines)
    # A few lines per task over several seconds with many attempts each, not one per attempt.
    per_logger = Counter(r.name for r in during)
    assert max(per_logger.values()) <= 3, "\n".join(lines)
    # Each task did notice (and said so).
    noticed = {name.removeprefix("channel_relay.") for name in per_logger}
    tasks = {
        "store.postgres",
        "realtime.endpoint",
        "usage",
        "retention",
        "channels.sequencer",
        "channels.cluster",
    }
    assert tasks <= noticed, "\n".join(lines)
    assert len(during) <= 12, "\n".join(lines)


async def test_credentials_the_engine_stops_accepting_are_logged_once_and_recovered_from(
    tmp_path: Path,
    own_postgres: PrivateServer,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    admin = await asyncpg.connect(own_postgres.url)
    try:
        await admin.execute("CREATE ROLE relay_login LOGIN")
        await admin.execute("CREATE DATABASE relay_refused OWNER relay_login")
        url = with_database(own_postgres.url, "relay_refused").replace("postgres@", "relay_login@")
        async with running_relay(tmp_path, store=url, max_idle_interval=600) as relay:
            assert (await post(http, relay, "c", {"data": "before"}))[0] == 201
            caplog.set_level(logging.INFO, logger="channel_relay")
            caplog.clear()
            # As when an operator rotates a password: the role may no longer log in, and its
            # connections are cut, so every reconnection is refused (28000).
            await admin.execute("ALTER ROLE relay_login NOLOGIN")
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE usename = 'relay_login'"
            )
            await _until_ready(http, relay, 503)
            for _ in range(5):
                assert (await post(http, relay, "c", {"data": "refused"}))[0] == 500
            await asyncio.sleep(OUTAGE_SECONDS)
            during = [r for r in caplog.records if r.name != "channel_relay.server"]
            await admin.execute("ALTER ROLE relay_login LOGIN")
            await _until_ready(http, relay, 200)
            deadline = time.monotonic() + 10
            while (await post(http, relay, "c", {"data": "after"}))[0] != 201:
                assert time.monotonic() < deadline, "publishes not accepted once allowed again"
                await asyncio.sleep(0.2)
    finally:
        await admin.close()
    lines = [f"{r.name} {r.levelname} {r.getMessage()}" for r in during]
    assert not [r for r in during if r.exc_info], "\n".join(lines)
    assert max(Counter(r.name for r in during).values()) <= 3, "\n".join(lines)
    assert any("not permitted to log in" in line for line in lines), "\n".join(lines)
