"""Storage faults on the PostgreSQL store: a database that refuses writes (the writer's session
turned read-only, as a failed-over or full server does), the writer's connection killed, and an
error at each statement of a commit in turn (triggers that raise at the k-th write, or at COMMIT).
Publishes are NACKed with 50000 and never ACKed unless durable, reads keep working, nothing
hangs, and the relay recovers by itself; what it serves from memory equals what is stored. The
tables beside the log (push registrations, annotations, live stats) refuse the same way: an
Ably error, nothing kept, and what the relay serves afterwards is what the database holds."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import asyncpg
import msgpack
import pytest
from relay_support import running_relay
from store_calls import HEADERS, append, get, history, post

from channel_relay.protocol.serials import parse_serial
from channel_relay.server import Relay
from channel_relay.store.postgres import PostgresStore


@pytest.fixture
async def relay(tmp_path: Path, postgres_url: str) -> AsyncIterator[Relay]:
    async with running_relay(tmp_path, store=postgres_url, stats_flush_interval=0.2) as server:
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


async def test_a_read_only_database_nacks_writes_serves_reads_and_recovers(
    relay: Relay, http: aiohttp.ClientSession
) -> None:
    _, body = await post(http, relay, "faults", {"data": "Hello"})
    (serial,) = body["serials"]
    await _read_only(relay, True)
    status, body = await post(http, relay, "faults", {"id": "retry-me", "data": "refused"})
    assert (status, body["error"]["code"]) == (500, 50000)
    async with http.patch(
        f"{relay.url}/channels/faults/messages/{quote(serial)}",
        json={"action": 5, "data": " lost"},
        headers=HEADERS,
    ) as resp:
        assert resp.status == 500
    assert (await get(http, relay, "/readyz"))[0] == 503
    assert await history(http, relay, "faults") == ["Hello"]
    assert (await get(http, relay, f"/channels/faults/messages/{quote(serial)}"))[1][
        "data"
    ] == "Hello"
    await _read_only(relay, False)
    assert (await get(http, relay, "/readyz"))[0] == 200
    assert (await post(http, relay, "faults", {"id": "retry-me", "data": "refused"}))[0] == 201
    assert await history(http, relay, "faults") == ["Hello", "refused"]


async def test_a_killed_writer_connection_fails_no_publish_silently_and_is_replaced(
    relay: Relay, http: aiohttp.ClientSession, postgres_url: str
) -> None:
    assert (await post(http, relay, "faults", {"data": "before"}))[0] == 201
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
        asyncio.gather(
            *(post(http, relay, "faults", {"id": f"k{i}", "data": f"k{i}"}) for i in range(5))
        ),
        timeout=60,
    )
    assert all(status in (201, 500) for status, _ in results), results
    # Whatever was refused is stored once by its retry; whatever was ACKed is there.
    for i, (status, _) in enumerate(results):
        if status != 201:
            assert (await post(http, relay, "faults", {"id": f"k{i}", "data": f"k{i}"}))[0] == 201
    assert sorted(await history(http, relay, "faults")) == sorted(
        ["before", *(f"k{i}" for i in range(5))]
    )


# An error at every statement of a commit, in turn. Every write to the log's tables counts as a
# step (a statement-level trigger before it, and a deferred one per row, run by COMMIT); the
# k-th raises an I/O error, as a failing disk would, whatever statements the commit is made of.
_STEP_FAULTS = """
CREATE TABLE relay_test_fault (k bigint NOT NULL);
INSERT INTO relay_test_fault VALUES (0);
CREATE SEQUENCE relay_test_steps;
CREATE FUNCTION relay_test_step() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  target bigint;
BEGIN
  SELECT k INTO target FROM relay_test_fault;
  IF target > 0 THEN
    IF nextval('relay_test_steps') = target THEN
      RAISE EXCEPTION 'injected fault at step %', target USING ERRCODE = 'io_error';
    END IF;
  END IF;
  RETURN NULL;
END $$;
"""
# What a publish and an append write (presence_members is left out: the heartbeat's orphan
# claim updates it, no rows or not, and would take steps meant for the commits).
_STEP_TABLES = ["channels", "messages", "versions", "idempotency"]


def _step_triggers() -> str:
    triggers = [
        f"CREATE TRIGGER relay_test_step BEFORE INSERT OR UPDATE OR DELETE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION relay_test_step();"
        f"CREATE CONSTRAINT TRIGGER relay_test_commit AFTER INSERT OR UPDATE ON {table} "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION relay_test_step();"
        for table in _STEP_TABLES
    ]
    return "\n".join([_STEP_FAULTS, *triggers])


@pytest.fixture
async def steps(postgres_url: str) -> AsyncIterator[asyncpg.Connection]:
    """An admin connection to the relay's database with the step faults installed (disarmed);
    they are removed afterwards, so the database serves the next test as it was."""
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(_step_triggers())
        yield admin
    finally:
        drops = [f"DROP TRIGGER IF EXISTS relay_test_step ON {t};" for t in _STEP_TABLES]
        drops += [f"DROP TRIGGER IF EXISTS relay_test_commit ON {t};" for t in _STEP_TABLES]
        await admin.execute(
            "".join(drops) + "DROP FUNCTION IF EXISTS relay_test_step();"
            "DROP SEQUENCE IF EXISTS relay_test_steps; DROP TABLE IF EXISTS relay_test_fault;"
        )
        await admin.close()


async def _served_equals_stored(
    http: aiohttp.ClientSession, relay: Relay, admin: asyncpg.Connection, serial: str
) -> str:
    """The message as GET serves it (the channel's cache) equals its row; returns its data."""
    status, served = await get(http, relay, f"/channels/faults/messages/{quote(serial)}")
    assert status == 200, served
    parsed = parse_serial(serial)
    assert parsed is not None
    body = await admin.fetchval(
        "SELECT m.body FROM messages m JOIN channels c ON c.id = m.channel_id "
        "WHERE c.name = 'faults' AND m.seq = $1",
        parsed[1],
    )
    assert served["data"] == msgpack.unpackb(body, raw=False)["data"]
    return str(served["data"])


async def test_a_commit_failing_at_any_statement_leaves_memory_equal_to_the_database(
    relay: Relay, http: aiohttp.ClientSession, steps: asyncpg.Connection
) -> None:
    """For k = 1, 2, ...: fail the k-th write of an idempotent publish and an append, then check
    that history, the served message and an idempotent retry all agree with the database;
    until a round runs with no step left to fail."""
    _, body = await post(http, relay, "faults", {"data": "base"})
    (serial,) = body["serials"]
    expected_data = "base"
    expected_history = ["base"]
    for k in range(1, 200):
        await steps.execute("SELECT setval('relay_test_steps', 1, false)")
        await steps.execute("UPDATE relay_test_fault SET k = $1", k)
        published = await post(http, relay, "faults", {"id": f"p{k}", "data": f"p{k}"})
        appended = await append(http, relay, "faults", serial, f"+{k}")
        await steps.execute("UPDATE relay_test_fault SET k = 0")
        last, called = await steps.fetchrow("SELECT last_value, is_called FROM relay_test_steps")
        fired = called and last >= k
        assert {published[0], appended[0]} <= {201, 200, 500}, (published, appended)
        for status, answer in (published, appended):
            if status == 500:
                assert answer["error"]["code"] == 50000, answer
        if published[0] == 201:
            expected_history.append(f"p{k}")
        if appended[0] == 200:
            expected_data += f"+{k}"
        # An idempotent retry stores a failed publish, or answers the stored one's serial.
        retry = await post(http, relay, "faults", {"id": f"p{k}", "data": f"p{k}"})
        assert retry[0] == 201, retry
        if published[0] == 201:
            assert retry == published
        else:
            expected_history.append(f"p{k}")
        assert await _served_equals_stored(http, relay, steps, serial) == expected_data
        logged = await history(http, relay, "faults")
        assert logged[0] == expected_data
        assert logged[1:] == expected_history[1:]
        if not fired:
            assert k > 5, "the faults never reached into the commits"
            break
    else:
        pytest.fail("a commit took more than 200 writes")


async def _cut_connections(admin: asyncpg.Connection) -> None:
    """End every other session of the database, and wait until they are gone."""
    pids = await admin.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid != pg_backend_pid()"
    )
    await admin.execute("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", pids)
    for _ in range(200):
        if not await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1::int[])", pids
        ):
            break
        await asyncio.sleep(0.05)
    # Let the relay's connections see their end before the next request picks one.
    await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def _database_read_only(admin: asyncpg.Connection) -> AsyncIterator[None]:
    """Every connection the relay makes meanwhile (its pool's, its writer's) refuses writes."""
    database = await admin.fetchval("SELECT current_database()")
    await admin.execute(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
    await _cut_connections(admin)
    try:
        yield
    finally:
        await admin.execute(f'ALTER DATABASE "{database}" RESET default_transaction_read_only')
        await _cut_connections(admin)


async def _send(
    http: aiohttp.ClientSession, method: str, url: str, body: Any = None
) -> tuple[int, Any]:
    async with http.request(method, url, json=body, headers=HEADERS) as resp:
        return resp.status, await resp.json()


async def _inbound_count(http: aiohttp.ClientSession, relay: Relay) -> int:
    status, minutes = await get(http, relay, "/stats?unit=minute&limit=100")
    assert status == 200, minutes
    return sum(m["entries"].get("messages.inbound.all.messages.count", 0) for m in minutes)


async def test_push_annotations_and_stats_refused_by_the_database_leave_nothing_behind(
    relay: Relay, http: aiohttp.ClientSession, postgres_url: str
) -> None:
    _, body = await post(http, relay, "faults", {"data": "annotated"})
    (serial,) = body["serials"]
    device_url = f"{relay.url}/push/deviceRegistrations/phone-1"
    annotations_url = f"{relay.url}/channels/faults/messages/{quote(serial)}/annotations"
    device = {
        "id": "phone-1",
        "platform": "ios",
        "formFactor": "phone",
        "push": {"recipient": {"transportType": "apns", "deviceToken": "abc"}},
    }
    admin = await asyncpg.connect(postgres_url)
    try:
        async with _database_read_only(admin):
            status, body = await _send(http, "PUT", device_url, device)
            assert (status, body["error"]["code"]) == (500, 50000)
            status, body = await _send(http, "POST", annotations_url, {"type": "views:total.v1"})
            assert (status, body["error"]["code"]) == (500, 50000)
            assert await _send(http, "GET", f"{relay.url}/push/deviceRegistrations") == (200, [])
            assert await _send(http, "GET", annotations_url) == (200, [])
            # The stats flush is refused too: the counts wait in memory, still served.
            await asyncio.sleep(0.5)
            assert await _inbound_count(http, relay) == 1
        assert (await _send(http, "PUT", device_url, device))[0] == 200
        assert (await _send(http, "POST", annotations_url, {"type": "views:total.v1"}))[0] == 201
        _, listed = await _send(http, "GET", f"{relay.url}/push/deviceRegistrations")
        assert [d["id"] for d in listed] == ["phone-1"]
        _, history = await get(http, relay, "/channels/faults/messages")
        assert history[0]["annotations"]["summary"] == {"views:total.v1": {"total": 1}}
        # Flushed once the database takes writes again, and counted once.
        stored = None
        for _ in range(100):
            stored = await admin.fetchval(
                "SELECT value FROM live_stats WHERE name = 'messages.inbound.all.messages.count'"
            )
            if stored is not None:
                break
            await asyncio.sleep(0.1)
        assert stored == 1
        assert await _inbound_count(http, relay) == 1
    finally:
        await admin.close()
