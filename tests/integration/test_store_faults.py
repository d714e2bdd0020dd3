"""Storage faults on the embedded store, injected the way SQLite's own I/O-error tests do it:
a real SQLite error at a chosen point of the writer's work (a full disk through max_page_count,
a read-only database through an authorizer refusing row changes, an interrupt at the Nth
virtual-machine step through the progress handler). After each failed commit, what the relay
serves from memory must equal what is on disk; nothing is ever ACKed that is not durable;
nothing hangs."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import msgpack
import pytest
from store_calls import append, get, history, post

from channel_relay.config import Settings
from channel_relay.server import Relay
from channel_relay.store.appends import fold
from channel_relay.store.sqlite import SqliteStore

KEY = "app1.key1:secret1"
OTHER_KEY = "app2.key1:secret2"
OTHER_HEADERS = {"Authorization": "Basic " + base64.b64encode(OTHER_KEY.encode()).decode()}


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[Relay]:
    server = Relay(
        Settings(
            host="127.0.0.1", port=0, db_path=str(tmp_path / "relay.db"), keys=[KEY, OTHER_KEY]
        )
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def _store(relay: Relay) -> SqliteStore:
    assert isinstance(relay.store, SqliteStore)
    return relay.store


async def _on_writer(relay: Relay, fn: Callable[[sqlite3.Connection], Any]) -> None:
    """Run `fn` on the writer's own connection (where a fault must be injected to be real)."""
    await _store(relay)._write(fn)


# Bigger than a page: storing it needs pages a full database does not have.
BIG = "x" * 8000


async def _disk_full(relay: Relay, full: bool) -> None:
    def limit(db: sqlite3.Connection) -> None:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages if full else 1_000_000_000}")

    await _on_writer(relay, limit)


_WRITES = {sqlite3.SQLITE_INSERT, sqlite3.SQLITE_UPDATE, sqlite3.SQLITE_DELETE}


def _refuse_writes(action: int, *_: Any) -> int:
    return sqlite3.SQLITE_DENY if action in _WRITES else sqlite3.SQLITE_OK


async def _read_only(relay: Relay, read_only: bool) -> None:
    # (query_only would refuse the BEGIN that lifting it needs; an authorizer refusing every
    # row change is the same fault for every write but the one that ends it.)
    await _on_writer(relay, lambda db: db.set_authorizer(_refuse_writes if read_only else None))


async def _served_equals_disk(
    http: aiohttp.ClientSession, relay: Relay, channel: str, serial: str
) -> str:
    """The message as GET serves it (the channel's cache) equals the message on disk (its row
    and the appends the row leaves out), read by a connection of its own; returns its data."""
    status, served = await get(http, relay, f"/channels/{channel}/messages/{quote(serial)}")
    assert status == 200, served
    seq = int(serial.rpartition("-")[2])
    with sqlite3.connect(_store(relay).path) as disk:
        channel_id, body, folded = disk.execute(
            "SELECT m.channel_id, m.body, m.folded_seq FROM messages m "
            "JOIN channels c ON c.id = m.channel_id WHERE c.name = ? AND m.seq = ?",
            (channel, seq),
        ).fetchone()
        appends = (
            []
            if folded is None
            else disk.execute(
                "SELECT body FROM versions WHERE channel_id = ? AND target_seq = ? AND seq > ? "
                "ORDER BY seq",
                (channel_id, seq, folded),
            ).fetchall()
        )
    on_disk = fold(msgpack.unpackb(body, raw=False), [row[0] for row in appends])
    assert served["data"] == on_disk["data"]
    return served["data"]


# The repros of issue 14, one test each


async def test_an_idempotent_publish_whose_commit_failed_is_stored_by_its_retry(
    relay: Relay, http: aiohttp.ClientSession
) -> None:
    assert (await post(http, relay, "idem", {"data": "warm"}))[0] == 201
    await _disk_full(relay, True)
    status, body = await post(http, relay, "idem", {"id": "order-1", "data": BIG})
    assert (status, body["error"]["code"]) == (500, 50000)
    assert "store failed" in body["error"]["message"]
    await _disk_full(relay, False)
    status, body = await post(http, relay, "idem", {"id": "order-1", "data": BIG})
    assert status == 201, body
    assert await history(http, relay, "idem") == ["warm", BIG]
    again = await post(http, relay, "idem", {"id": "order-1", "data": BIG})
    assert again == (201, body)
    assert await history(http, relay, "idem") == ["warm", BIG]


async def test_an_append_whose_commit_failed_leaves_no_trace_in_the_served_message(
    relay: Relay, http: aiohttp.ClientSession
) -> None:
    status, body = await post(http, relay, "stream", {"data": "Hello"})
    (serial,) = body["serials"]
    assert (await append(http, relay, "stream", serial, ","))[0] == 200
    await _disk_full(relay, True)
    status, body = await append(http, relay, "stream", serial, BIG)
    assert (status, body["error"]["code"]) == (500, 50000)
    await _disk_full(relay, False)
    assert await _served_equals_disk(http, relay, "stream", serial) == "Hello,"
    assert (await append(http, relay, "stream", serial, " world"))[0] == 200
    assert await _served_equals_disk(http, relay, "stream", serial) == "Hello, world"
    assert await history(http, relay, "stream") == ["Hello, world"]


async def test_when_the_writer_dies_pending_publishes_are_nacked_and_it_restarts(
    relay: Relay, http: aiohttp.ClientSession
) -> None:
    assert (await post(http, relay, "dies", {"data": "before"}))[0] == 201
    # Once armed, every statement inside a transaction is interrupted, the ROLLBACK included:
    # the writer cannot recover its connection and dies.
    armed = False
    await _on_writer(
        relay, lambda db: db.set_progress_handler(lambda: armed and db.in_transaction, 1)
    )
    armed = True
    results = await asyncio.wait_for(
        asyncio.gather(*(post(http, relay, "dies", {"data": f"m{i}"}) for i in range(5))),
        timeout=30,
    )
    assert all(status in (201, 500) for status, _ in results)
    failed = [body for status, body in results if status == 500]
    assert failed, results
    assert all(b["error"]["code"] == 50000 for b in failed)
    # A new connection serves: publishing, and readiness, work again.
    assert (await post(http, relay, "dies", {"data": "after"}))[0] == 201
    assert (await get(http, relay, "/readyz"))[0] == 200
    stored = [f"m{i}" for i, (status, _) in enumerate(results) if status == 201]
    assert await history(http, relay, "dies") == ["before", *stored, "after"]


# One bad operation never fails another


async def test_a_message_the_store_cannot_hold_is_refused_before_it_reaches_a_commit(
    relay: Relay, http: aiohttp.ClientSession
) -> None:
    bad = post(http, relay, "other", {"data": "x", "extras": {"n": 2**70}}, OTHER_HEADERS)
    goods = [post(http, relay, "good", {"data": f"m{i}"}) for i in range(5)]
    (bad_status, bad_body), *results = await asyncio.gather(bad, *goods)
    assert (bad_status, bad_body["error"]["code"]) == (400, 40032)
    assert all(status == 201 for status, _ in results)
    assert sorted(await history(http, relay, "good")) == [f"m{i}" for i in range(5)]


# Disk full and read-only: publishes refused, reads served, recovery


@pytest.mark.parametrize("fault", [_disk_full, _read_only], ids=["disk-full", "read-only"])
async def test_a_database_that_cannot_be_written_nacks_publishes_serves_reads_and_recovers(
    relay: Relay, http: aiohttp.ClientSession, fault: Callable[[Relay, bool], Any]
) -> None:
    assert (await post(http, relay, "ro", {"data": "kept"}))[0] == 201
    await fault(relay, True)
    status, body = await post(http, relay, "ro", {"data": BIG})
    assert (status, body["error"]["code"]) == (500, 50000)
    # (A full database still takes the readiness probe's one small row: the failed publish
    # is what tells.)
    assert (await get(http, relay, "/readyz"))[0] == 503
    assert await history(http, relay, "ro") == ["kept"]
    await fault(relay, False)
    assert (await get(http, relay, "/readyz"))[0] == 200
    assert (await post(http, relay, "ro", {"data": "again"}))[0] == 201
    assert await history(http, relay, "ro") == ["kept", "again"]


# An interrupt at every step of a commit


async def test_a_commit_failing_at_any_step_leaves_memory_equal_to_disk(
    relay: Relay, http: aiohttp.ClientSession
) -> None:
    """For k = 1, 2, ...: interrupt the k-th step of the writer's work on an idempotent publish
    and an append, then check that history, the served message and an idempotent retry all
    agree with the disk; until a round runs with no step left to interrupt."""
    _, body = await post(http, relay, "steps", {"data": "base"})
    (serial,) = body["serials"]
    expected_data = "base"
    expected_history = ["base"]
    # Steps are counted only while armed: between the test's arming and disarming, the
    # writer's only work is the publish and the append.
    armed = False
    seen = 0

    def handler() -> int:
        nonlocal seen
        if not armed:
            return 0
        seen += 1
        return int(seen == k)

    await _on_writer(relay, lambda db: db.set_progress_handler(handler, 5))
    for k in range(1, 500):
        seen, armed = 0, True
        published = await post(http, relay, "steps", {"id": f"p{k}", "data": f"p{k}"})
        appended = await append(http, relay, "steps", serial, f"+{k}")
        armed = False
        fired = seen >= k
        if published[0] == 201:
            expected_history.append(f"p{k}")
        if appended[0] == 200:
            expected_data += f"+{k}"
        assert {published[0], appended[0]} <= {201, 200, 500}
        # An idempotent retry stores a failed publish, or answers the stored one's serial.
        retry = await post(http, relay, "steps", {"id": f"p{k}", "data": f"p{k}"})
        assert retry[0] == 201
        if published[0] == 201:
            assert retry == published
        else:
            expected_history.append(f"p{k}")
        assert await _served_equals_disk(http, relay, "steps", serial) == expected_data
        logged = await history(http, relay, "steps")
        assert logged[0] == expected_data
        assert logged[1:] == expected_history[1:]
        if not fired:
            assert k > 10, "the interrupts never reached into the commits"
            break
    else:
        pytest.fail("a commit took more than 500 interruptible steps")
