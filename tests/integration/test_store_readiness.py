"""/readyz follows the publishes, not only its own probe: a database that still takes the probe's
one small row but no message (SQLite full up to its last free page; PostgreSQL refusing large
rows as a full disk does) is not ready from the first failed commit, says why, and is ready again
once a message-sized write commits. A small write that still fits (a presence event, a short
message) does not make it ready while messages as large as the one that failed do not fit: /readyz
does not flap. On both engines."""

from __future__ import annotations

import sqlite3
from typing import Any

import aiohttp
import asyncpg
from raw_client import connect_raw
from relay_support import APP_KEY
from store_calls import post

from channel_relay.server import Relay
from channel_relay.store.sqlite import SqliteStore

ACK, PRESENCE, ENTER = 1, 14, 2

# Bigger than a page: storing it needs space a full database does not have.
BIG = "x" * 8000

# PostgreSQL's disk full (SQLSTATE 53100) for every row over about 1000 bytes, in messages and
# in the settings row the readiness probe writes: small writes still fit (a nearly full volume).
_PG_FULL = """
CREATE FUNCTION relay_test_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF octet_length(to_jsonb(NEW)::text) > 2000 THEN
    RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER relay_test_disk_full BEFORE INSERT OR UPDATE ON messages
  FOR EACH ROW EXECUTE FUNCTION relay_test_disk_full();
CREATE TRIGGER relay_test_disk_full BEFORE INSERT OR UPDATE ON settings
  FOR EACH ROW EXECUTE FUNCTION relay_test_disk_full();
"""
_PG_FREED = """
DROP TRIGGER relay_test_disk_full ON messages;
DROP TRIGGER relay_test_disk_full ON settings;
DROP FUNCTION relay_test_disk_full();
"""


async def _disk_full(relay: Relay, engine: str | None, full: bool) -> None:
    if engine is None:
        store = relay.store
        assert isinstance(store, SqliteStore)

        def limit(db: sqlite3.Connection) -> None:
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            db.execute(f"PRAGMA max_page_count = {pages if full else 1_000_000_000}")

        await store._write(limit)
        return
    conn = await asyncpg.connect(engine)
    try:
        await conn.execute(_PG_FULL if full else _PG_FREED)
    finally:
        await conn.close()


async def _ready(http: aiohttp.ClientSession, relay: Relay) -> tuple[int, Any]:
    async with http.get(f"{relay.url}/readyz") as resp:
        return resp.status, await resp.json()


async def test_a_full_database_is_not_ready_from_the_first_failed_publish_until_one_fits(
    relay: Relay, engine: str | None, http: aiohttp.ClientSession
) -> None:
    assert (await post(http, relay, "full", {"data": "kept"}))[0] == 201
    assert (await _ready(http, relay))[0] == 200
    await _disk_full(relay, engine, True)
    # The probe's small row still fits: only a publish shows the database is full.
    status, body = await post(http, relay, "full", {"data": BIG})
    assert (status, body["error"]["code"]) == (500, 50000)
    status, body = await _ready(http, relay)
    assert status == 503, body
    assert body["status"] == "not ready"
    assert body["reason"].startswith("publishes are failing: "), body
    assert "full" in body["reason"] or "space" in body["reason"], body
    # Still not ready while nothing message-sized fits, however often it is asked.
    assert (await _ready(http, relay))[0] == 503
    await _disk_full(relay, engine, False)
    assert await _ready(http, relay) == (200, {"status": "ready"})
    assert (await post(http, relay, "full", {"data": BIG}))[0] == 201
    assert (await _ready(http, relay))[0] == 200


async def test_a_publish_that_commits_again_makes_the_relay_ready_without_a_probe(
    relay: Relay, engine: str | None, http: aiohttp.ClientSession
) -> None:
    await _disk_full(relay, engine, True)
    assert (await post(http, relay, "full", {"data": BIG}))[0] == 500
    await _disk_full(relay, engine, False)
    assert (await post(http, relay, "full", {"data": BIG}))[0] == 201
    assert relay.store.health.failure is None
    assert (await _ready(http, relay))[0] == 200


async def test_small_writes_that_still_fit_do_not_make_a_full_database_ready(
    relay: Relay, engine: str | None, http: aiohttp.ClientSession
) -> None:
    client, _ = await connect_raw(relay.port, APP_KEY, "json", clientId="small")
    await client.attach("full")
    await _disk_full(relay, engine, True)
    assert (await post(http, relay, "full", {"data": BIG}))[0] == 500
    assert (await _ready(http, relay))[0] == 503
    # A presence event and a short message still fit, and commit.
    await client.send(
        {"action": PRESENCE, "channel": "full", "msgSerial": 0, "presence": [{"action": ENTER}]}
    )
    ack = await client.recv_action(ACK)
    assert "error" not in ack, ack
    assert (await post(http, relay, "full", {"data": "short"}))[0] == 201
    # Messages like the one that failed still do not: not ready, every time it is asked.
    for _ in range(3):
        status, body = await _ready(http, relay)
        assert status == 503, body
        assert body["reason"].startswith("publishes are failing: "), body
    assert (await post(http, relay, "full", {"data": BIG}))[0] == 500
    await _disk_full(relay, engine, False)
    assert (await post(http, relay, "full", {"data": BIG}))[0] == 201
    assert (await _ready(http, relay))[0] == 200
    await client.close()
