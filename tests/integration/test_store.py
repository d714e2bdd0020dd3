"""The store on both engines (real SQLite files, a real PostgreSQL database): group commit,
numbering and idempotency decided in the commit, channel logs, history reads, and what survives
closing and reopening the database (or restarting the relay on it)."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from channel_relay.channels.registry import ChannelRegistry
from channel_relay.channels.rules import ChannelRules
from channel_relay.config import Settings
from channel_relay.protocol.errors import AblyError
from channel_relay.protocol.serials import format_serial, parse_serial
from channel_relay.server import Relay
from channel_relay.store.base import (
    ChannelLog,
    HistoryQuery,
    Mutate,
    MutateResult,
    Publish,
    PublishResult,
    Store,
)
from channel_relay.store.postgres import PostgresStore
from channel_relay.store.sqlite import SqliteStore


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "store.db")


@pytest.fixture
async def two_stores(db_path: str) -> AsyncIterator[tuple[SqliteStore, SqliteStore]]:
    """Two stores on one SQLite file, as the relay and another process (the CLI) open it."""
    relay, other = SqliteStore(db_path), SqliteStore(db_path)
    await relay.open()
    await other.open()
    try:
        yield relay, other
    finally:
        await other.close()
        await relay.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def new_store(request: pytest.FixtureRequest, db_path: str) -> Callable[[], Store]:
    """Makes a store on this test's database (each one made opens the same database)."""
    if request.param == "sqlite":
        return lambda: SqliteStore(db_path)
    url: str = request.getfixturevalue("postgres_url")
    return lambda: PostgresStore(url)


@pytest.fixture
async def store(new_store: Callable[[], Store]) -> AsyncIterator[Store]:
    store = new_store()
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def sqlite_store(db_path: str) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(db_path)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def _wal_commits(db_path: str) -> int:
    """Transactions in the database's write-ahead log since its last reset, read from the file
    (https://sqlite.org/fileformat.html#the_write_ahead_log): a commit frame records the
    database size after the commit, other frames record 0."""
    wal = Path(db_path + "-wal").read_bytes()
    page_size = int.from_bytes(wal[8:12], "big")
    salts = wal[16:24]
    commits = 0
    for offset in range(32, len(wal) - 24, 24 + page_size):
        header = wal[offset : offset + 24]
        if header[8:16] != salts:
            break
        commits += int.from_bytes(header[4:8], "big") != 0
    return commits


def _message(seq: int, timestamp: int | None = None) -> dict[str, Any]:
    return {"data": f"m{seq}", "timestamp": 1000 + seq if timestamp is None else timestamp}


def _submit(
    store: Store,
    log: ChannelLog,
    messages: list[dict[str, Any]],
    ids: list[str | None] | None = None,
) -> asyncio.Future[PublishResult]:
    """Submit a publish without awaiting it: the future settles when the store reports it."""
    future: asyncio.Future[PublishResult] = asyncio.get_running_loop().create_future()

    def done(result: PublishResult | None, error: BaseException | None) -> None:
        if error is not None:
            future.set_exception(error)
        else:
            assert result is not None
            future.set_result(result)

    ids = ids if ids is not None else [None] * len(messages)
    store.submit(Publish(log.channel_id, log.epoch, messages, ids, done))
    return future


async def _append(
    store: Store,
    log: ChannelLog,
    messages: list[dict[str, Any]],
    ids: list[str | None] | None = None,
) -> PublishResult:
    return await _submit(store, log, messages, ids)


async def _data(store: Store, query: HistoryQuery) -> list[Any]:
    return [m.message["data"] for m in await store.history(query)]


# Group commit


async def test_batches_submitted_without_awaiting_all_commit_and_complete_in_order(
    sqlite_store: SqliteStore, db_path: str
) -> None:
    store = sqlite_store
    logs = [await store.channel("app", f"ch{i}") for i in range(3)]
    commits_before = _wal_commits(db_path)
    count = 3000
    completed: list[int] = []
    errors: list[BaseException] = []
    all_done = asyncio.Event()

    def done_for(index: int) -> Callable[[PublishResult | None, BaseException | None], None]:
        def done(result: PublishResult | None, error: BaseException | None) -> None:
            if error is not None:
                errors.append(error)
            completed.append(index)
            if len(completed) == count:
                all_done.set()

        return done

    seqs = [0, 0, 0]
    for index in range(count):
        channel = index % 3
        seqs[channel] += 1
        log = logs[channel]
        store.submit(
            Publish(
                log.channel_id,
                log.epoch,
                [_message(seqs[channel])],
                [f"id-{index}"],
                done_for(index),
            )
        )
    async with asyncio.timeout(20):
        await all_done.wait()

    assert errors == []
    assert completed == list(range(count))
    # Group commit: the pending batches share transactions (and fsyncs) instead of taking one
    # each. Awaiting every batch in turn would log one commit per batch.
    commits = _wal_commits(db_path) - commits_before
    assert 1 <= commits < count // 10, f"{commits} commits for {count} batches"
    for channel, log in enumerate(logs):
        rows = await store.history(HistoryQuery(log.channel_id, limit=2000, forwards=True))
        assert [r.seq for r in rows] == list(range(1, seqs[channel] + 1))
    ids = await store.idempotent_seqs(logs[0].channel_id, ["id-0", "id-2997"])
    assert ids == {"id-0": 1, "id-2997": 1000}


async def test_batches_awaited_one_by_one_commit_one_by_one(
    sqlite_store: SqliteStore, db_path: str
) -> None:
    store = sqlite_store
    # The contrast that makes the WAL count above meaningful.
    log = await store.channel("app", "serial")
    before = _wal_commits(db_path)
    for seq in range(1, 21):
        await _append(store, log, [_message(seq)])
    assert _wal_commits(db_path) - before == 20


async def test_a_publish_the_database_cannot_store_fails_alone_in_its_group_commit(
    store: Store,
) -> None:
    # An integer beyond 64 bits cannot be stored (the relay refuses it before it gets here, but
    # the store must not let one bad operation fail the others committed with it).
    good = await store.channel("app", "good")
    other = await store.channel("other-app", "bad")
    futures = [_submit(store, good, [_message(i)]) for i in range(1, 4)]
    bad = _submit(store, other, [{"data": "x", "timestamp": 1, "extras": {"n": 2**70}}])
    futures += [_submit(store, good, [_message(i)]) for i in range(4, 7)]
    with pytest.raises(OverflowError):
        await bad
    assert [(await f).seqs for f in futures] == [[1], [2], [3], [4], [5], [6]]
    assert await _data(store, HistoryQuery(good.channel_id, limit=10, forwards=True)) == [
        f"m{i}" for i in range(1, 7)
    ]
    assert await store.history(HistoryQuery(other.channel_id, limit=10)) == []
    assert (await _append(store, other, [_message(1)])).seqs == [1]


async def test_serials_and_idempotency_are_decided_in_the_commit(store: Store) -> None:
    log = await store.channel("app", "idem-commit")
    # Three publishes of one id in the same group commit: stored once, all told its seq.
    first, again, third = (
        _submit(store, log, [_message(1), _message(2)], ["a", None]),
        _submit(store, log, [_message(1)], ["a"]),
        _submit(store, log, [_message(3), _message(3)], ["b", "b"]),
    )
    assert (await first).seqs == [1, 2] and (await first).fresh == [True, True]
    assert (await again).seqs == [1] and (await again).fresh == [False]
    assert (await third).seqs == [3, 3] and (await third).fresh == [True, False]
    rows = await store.history(HistoryQuery(log.channel_id, limit=10, forwards=True))
    assert [(r.seq, r.message["serial"]) for r in rows] == [
        (seq, format_serial(log.epoch, seq)) for seq in (1, 2, 3)
    ]


# Channel logs


async def test_a_channel_log_is_created_once_with_one_epoch_under_concurrent_requests(
    store: Store,
) -> None:
    logs = await asyncio.gather(*(store.channel("app", "racy") for _ in range(25)))
    assert len({log.channel_id for log in logs}) == 1
    assert len({log.epoch for log in logs}) == 1
    assert (await store.channel("app", "racy")).epoch == logs[0].epoch


async def test_the_registry_loads_a_channel_once_for_concurrent_users(store: Store) -> None:
    registry = ChannelRegistry(store, lambda _app, _name: ChannelRules())
    channels = await asyncio.gather(*(registry.get("app", "shared") for _ in range(25)))
    assert all(channel is channels[0] for channel in channels)
    assert len(registry) == 1


async def test_a_channel_load_outlives_the_user_that_started_it(store: Store) -> None:
    # A subscriber whose socket drops while its ATTACH loads the channel is cancelled; another
    # connection attaching the same channel meanwhile must still get it (and its ATTACHED).
    await store.channel("app", "dropped-while-loading")
    registry = ChannelRegistry(store, lambda _app, _name: ChannelRules())
    first = asyncio.create_task(registry.attach("app", "dropped-while-loading"))
    second = asyncio.create_task(registry.attach("app", "dropped-while-loading"))
    await asyncio.sleep(0)
    assert not first.done() and not second.done()
    first.cancel()
    channel = await second
    assert channel.stored
    assert await registry.attach("app", "dropped-while-loading") is channel


async def test_channels_are_scoped_per_app(store: Store) -> None:
    one = await store.channel("app1", "same-name")
    two = await store.channel("app2", "same-name")
    assert one.channel_id != two.channel_id
    await _append(store, one, [_message(1)])
    assert await store.history(HistoryQuery(two.channel_id, limit=10)) == []


async def test_a_trimmed_channel_is_found_with_its_first_remaining_seq(store: Store) -> None:
    log = await store.channel("app", "trimmed")
    await _append(store, log, [_message(seq) for seq in range(1, 6)])
    await store.trim(log.channel_id, 3, 100)
    found = await store.find_channel("app", "trimmed")
    assert found is not None
    assert (found.channel_id, found.epoch) == (log.channel_id, log.epoch)
    assert (found.first_seq, found.last_seq, found.lost) == (4, 5, ())
    assert await store.channel("app", "trimmed") == found


async def test_a_new_channel_starts_at_seq_zero(store: Store) -> None:
    log = await store.channel("app", "fresh")
    assert log.last_seq == 0
    assert parse_serial(f"{log.epoch}-{0:016d}") == (log.epoch, 0)


# History reads


async def test_history_pages_backwards_and_forwards_with_seq_bounds(store: Store) -> None:
    log = await store.channel("app", "pages")
    await _append(store, log, [_message(seq) for seq in range(1, 11)])
    cid = log.channel_id
    assert await _data(store, HistoryQuery(cid, limit=3)) == ["m10", "m9", "m8"]
    assert await _data(store, HistoryQuery(cid, limit=3, max_seq=7)) == ["m7", "m6", "m5"]
    assert await _data(store, HistoryQuery(cid, limit=3, forwards=True)) == ["m1", "m2", "m3"]
    forwards_from_4 = HistoryQuery(cid, limit=3, forwards=True, min_seq=4)
    assert await _data(store, forwards_from_4) == ["m4", "m5", "m6"]
    between = HistoryQuery(cid, limit=100, min_seq=3, max_seq=5)
    assert await _data(store, between) == ["m5", "m4", "m3"]
    assert await _data(store, HistoryQuery(cid, limit=100, min_seq=11)) == []


async def test_history_time_bounds_are_inclusive(store: Store) -> None:
    log = await store.channel("app", "times")
    # Several messages may share a millisecond; the bounds still select by timestamp.
    stamps = [100, 200, 200, 300, 400]
    await _append(store, log, [_message(i + 1, ts) for i, ts in enumerate(stamps)])
    cid = log.channel_id
    assert await _data(store, HistoryQuery(cid, limit=100, start=200, end=300)) == [
        "m4",
        "m3",
        "m2",
    ]
    assert await _data(store, HistoryQuery(cid, limit=100, forwards=True, start=300)) == [
        "m4",
        "m5",
    ]
    assert await _data(store, HistoryQuery(cid, limit=100, end=100)) == ["m1"]
    limited = HistoryQuery(cid, limit=2, forwards=True, start=200, min_seq=3)
    assert await _data(store, limited) == ["m3", "m4"]


async def test_stored_messages_come_back_as_published(store: Store) -> None:
    log = await store.channel("app", "bodies")
    body = {
        "id": "abc:0",
        "name": "é",
        "data": b"\x00\xff",
        "encoding": "cipher",
        "extras": {"headers": {"k": "v"}},
        "timestamp": 5,
    }
    await _append(store, log, [body])
    (row,) = await store.history(HistoryQuery(log.channel_id, limit=1))
    assert row.message == {**body, "serial": format_serial(log.epoch, 1)}
    assert type(row.message["data"]) is bytes


# What survives a reopen


async def test_idempotency_ids_are_found_after_reopening_the_database(
    new_store: Callable[[], Store],
) -> None:
    store = new_store()
    await store.open()
    log = await store.channel("app", "idem")
    await _append(store, log, [_message(1), _message(2)], ["client:0", "client:1"])
    await store.close()

    reopened = new_store()
    await reopened.open()
    try:
        log = await reopened.channel("app", "idem")
        found = await reopened.idempotent_seqs(log.channel_id, ["client:0", "client:1", "new:0"])
        assert found == {"client:0": 1, "client:1": 2}
        assert await reopened.idempotent_seqs(log.channel_id, []) == {}
    finally:
        await reopened.close()


async def test_reopening_keeps_each_channels_last_seq_and_epoch(
    new_store: Callable[[], Store],
) -> None:
    store = new_store()
    await store.open()
    log = await store.channel("app", "durable")
    for seq in range(1, 6):
        await _append(store, log, [_message(seq)])
    epoch = log.epoch
    await store.close()

    reopened = new_store()
    await reopened.open()
    try:
        log = await reopened.channel("app", "durable")
        assert (log.epoch, log.last_seq) == (epoch, 5)
    finally:
        await reopened.close()


# Through the relay: keys and serials across restarts


def _basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(key.encode()).decode()}


async def _publish(relay: Relay, channel: str, key: str) -> list[str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{relay.url}/channels/{channel}/messages", json=[{"data": "x"}], headers=_basic(key)
        ) as resp,
    ):
        assert resp.status == 201, await resp.text()
        return (await resp.json())["serials"]


async def test_the_default_key_survives_a_restart(tmp_path: Path) -> None:
    settings = Settings(host="127.0.0.1", port=0, db_path=str(tmp_path / "relay.db"), keys=[])
    first = Relay(settings)
    await first.start()
    try:
        key = first.default_key
        assert key.count(":") == 1 and "." in key.split(":")[0]
        await _publish(first, "keyed", key)
    finally:
        await first.stop()

    second = Relay(Settings(host="127.0.0.1", port=0, db_path=settings.db_path, keys=[]))
    await second.start()
    try:
        assert second.default_key == key
        await _publish(second, "keyed", key)
    finally:
        await second.stop()


async def test_serials_are_never_reused_after_a_relay_restart(tmp_path: Path) -> None:
    key = "app1.key1:secret1"
    db = str(tmp_path / "relay.db")
    serials: list[str] = []
    for _ in range(2):
        relay = Relay(Settings(host="127.0.0.1", port=0, db_path=db, keys=[key]))
        await relay.start()
        try:
            for _ in range(3):
                serials += await _publish(relay, "restarted", key)
        finally:
            await relay.stop()
    assert len(set(serials)) == 6
    assert serials == sorted(serials)
    assert [parse_serial(s)[1] for s in serials if parse_serial(s)] == [1, 2, 3, 4, 5, 6]


async def test_channel_names_are_listed_per_app_by_prefix_in_code_point_order(
    store: Store,
) -> None:
    for name in ["b", "a%", "a_x", "aé", "a:2", "a:1", "z"]:
        await store.channel("app1", name)
    await store.channel("app2", "a:3")

    assert await store.channel_names("app1", "a", None, 10) == ["a%", "a:1", "a:2", "a_x", "aé"]
    assert await store.channel_names("app1", "a_", None, 10) == ["a_x"]
    assert await store.channel_names("app1", "a", "a:2", 2) == ["a_x", "aé"]
    assert await store.channel_names("app1", "", "aé", 10) == ["b", "z"]


# Several nodes on one PostgreSQL database


def _mutate_append(
    store: Store, log: ChannelLog, target: int, fragment: str
) -> asyncio.Future[MutateResult]:
    future: asyncio.Future[MutateResult] = asyncio.get_running_loop().create_future()

    def apply(current: dict[str, Any], serial: str) -> tuple[dict[str, Any], dict[str, Any]]:
        aggregate = {**current, "data": current["data"] + fragment, "version": {"serial": serial}}
        return aggregate, {"data": fragment, "version": {"serial": serial}}

    def done(result: MutateResult | None, error: BaseException | None) -> None:
        if error is not None:
            future.set_exception(error)
        else:
            assert result is not None
            future.set_result(result)

    store.submit(Mutate(log.channel_id, log.epoch, target, apply, done))
    return future


@pytest.fixture
async def two_nodes(postgres_url: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    nodes = (PostgresStore(postgres_url), PostgresStore(postgres_url))
    for node in nodes:
        await node.open()
    try:
        yield nodes
    finally:
        for node in nodes:
            await node.close()


async def test_two_nodes_number_one_channel_without_gaps_or_repeats(
    two_nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = two_nodes
    log_a, log_b = await a.channel("app", "shared"), await b.channel("app", "shared")
    assert (log_a.channel_id, log_a.epoch) == (log_b.channel_id, log_b.epoch)
    futures = [
        _submit(node, log, [_message(i)])
        for i in range(200)
        for node, log in ((a, log_a), (b, log_b))
    ]
    seqs = [seq for f in futures for seq in (await f).seqs]
    assert sorted(seqs) == list(range(1, 401))
    rows = await a.history(HistoryQuery(log_a.channel_id, limit=1000, forwards=True))
    assert [r.seq for r in rows] == list(range(1, 401))


async def test_one_idempotent_publish_sent_through_two_nodes_is_stored_once(
    two_nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = two_nodes
    log_a, log_b = await a.channel("app", "idem"), await b.channel("app", "idem")
    first = _submit(a, log_a, [_message(1)], ["order-7"])
    second = _submit(b, log_b, [_message(1)], ["order-7"])
    results = [await first, await second]
    assert results[0].seqs == results[1].seqs == [1]
    assert sorted(r.fresh[0] for r in results) == [False, True]
    assert len(await a.history(HistoryQuery(log_a.channel_id, limit=10))) == 1


async def test_appends_to_one_message_through_two_nodes_all_land_in_its_aggregate(
    two_nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    a, b = two_nodes
    log_a, log_b = await a.channel("app", "stream"), await b.channel("app", "stream")
    (target,) = (await _submit(a, log_a, [{"data": "", "timestamp": 1}])).seqs
    futures = [
        _mutate_append(node, log, target, f"{name}{i} ")
        for i in range(50)
        for node, log, name in ((a, log_a, "a"), (b, log_b, "b"))
    ]
    results = [await f for f in futures]
    final = await a.message(log_a.channel_id, target)
    assert final is not None
    fragments = final["data"].split()
    assert sorted(fragments) == sorted(f"{n}{i}" for i in range(50) for n in "ab")
    # Each node's appends land in the order it sent them, and the last version wins.
    assert [f for f in fragments if f[0] == "a"] == [f"a{i}" for i in range(50)]
    assert final["version"]["serial"] == format_serial(log_a.epoch, max(r.seq for r in results))


# Appends: the aggregate each commit leaves


async def test_appends_queued_together_all_land_in_the_aggregate_and_its_versions(
    store: Store,
) -> None:
    log = await store.channel("app", "burst")
    (target,) = (await _append(store, log, [{"data": "", "timestamp": 1}])).seqs
    results = [await f for f in [_mutate_append(store, log, target, f"{i} ") for i in range(30)]]
    final = await store.message(log.channel_id, target)
    assert final is not None
    assert final["data"].split() == [str(i) for i in range(30)]
    assert final["version"]["serial"] == format_serial(log.epoch, results[-1].seq)
    versions = await store.versions(
        log.channel_id, target, HistoryQuery(log.channel_id, limit=100, forwards=True)
    )
    assert [v.message["data"] for v in versions] == ["", *(f"{i} " for i in range(30))]


async def test_a_messages_versions_are_its_own_when_streams_interleave_on_its_channel(
    store: Store,
) -> None:
    log = await store.channel("app", "interleaved")
    first, second = (
        await _append(store, log, [{"data": "", "timestamp": 1}, {"data": "", "timestamp": 2}])
    ).seqs
    for i in range(40):
        await asyncio.gather(
            _mutate_append(store, log, first, f"a{i}"), _mutate_append(store, log, second, f"b{i}")
        )
    (later,) = (await _append(store, log, [_message(3)])).seqs
    await _mutate_append(store, log, later, " changed")
    for target, name in ((first, "a"), (second, "b")):
        oldest = await store.versions(
            log.channel_id, target, HistoryQuery(log.channel_id, limit=10, forwards=True)
        )
        newest = await store.versions(
            log.channel_id, target, HistoryQuery(log.channel_id, limit=10)
        )
        assert [v.message["data"] for v in oldest] == ["", *(f"{name}{i}" for i in range(9))]
        assert [v.message["data"] for v in newest] == [f"{name}{i}" for i in range(39, 29, -1)]
        assert {v.target_seq for v in oldest + newest} == {target}
        before = HistoryQuery(log.channel_id, limit=100, max_seq=oldest[-1].seq)
        paged = await store.versions(log.channel_id, target, before)
        assert [v.seq for v in paged] == [v.seq for v in reversed(oldest)]


async def test_the_retention_cutoff_by_age_is_the_last_message_stamped_before_it(
    store: Store,
) -> None:
    log = await store.channel("app", "aging")
    stamped: list[tuple[int, int]] = []
    for i in range(40):
        # Several messages share a millisecond, and appends take seqs between messages.
        timestamp = 1_000 + 10 * (i // 3)
        (seq,) = (await _append(store, log, [_message(i, timestamp)])).seqs
        stamped.append((seq, timestamp))
        if i % 4 == 0:
            await _mutate_append(store, log, seq, " more")
    await store.trim(log.channel_id, stamped[4][0], 100)
    kept = stamped[5:]
    for before in range(kept[0][1] - 1, kept[-1][1] + 12):
        expected = max((seq for seq, timestamp in kept if timestamp < before), default=0)
        assert await store.retention_cutoff(log.channel_id, before, None) == expected, before
    empty = await store.channel("app", "empty")
    assert await store.retention_cutoff(empty.channel_id, 10**13, None) == 0


async def test_a_long_stream_reads_whole_from_history_the_message_and_a_replay(
    store: Store,
) -> None:
    log = await store.channel("app", "long-stream")
    first, target = (await _append(store, log, [_message(1), {"data": "", "timestamp": 2}])).seqs
    for start in range(0, 150, 10):
        await asyncio.gather(
            *(_mutate_append(store, log, target, f"{i} ") for i in range(start, start + 10))
        )
    whole = "".join(f"{i} " for i in range(150))
    assert (await store.message(log.channel_id, target) or {})["data"] == whole
    assert await _data(store, HistoryQuery(log.channel_id, limit=10)) == [whole, "m1"]
    replayed = await store.events(log.channel_id, first, first, 1_000, 10)
    assert [(e.seq, e.message["data"]) for e in replayed] == [(target, whole)]


async def test_a_stream_carries_on_whole_after_the_database_is_reopened(
    new_store: Callable[[], Store],
) -> None:
    store = new_store()
    await store.open()
    log = await store.channel("app", "resumed-stream")
    (target,) = (await _append(store, log, [{"data": "", "timestamp": 1}])).seqs
    for i in range(70):
        await _mutate_append(store, log, target, f"{i} ")
    await store.close()
    reopened = new_store()
    await reopened.open()
    try:
        for i in range(70, 75):
            await _mutate_append(reopened, log, target, f"{i} ")
        final = await reopened.message(log.channel_id, target)
        assert final is not None and final["data"] == "".join(f"{i} " for i in range(75))
    finally:
        await reopened.close()


async def test_an_append_builds_on_what_another_process_wrote_to_the_message(
    two_stores: tuple[SqliteStore, SqliteStore],
) -> None:
    relay, other = two_stores
    log = await relay.channel("app", "shared-file")
    (target,) = (await _append(relay, log, [{"data": "", "timestamp": 1}])).seqs
    await _mutate_append(relay, log, target, "a ")
    await _mutate_append(other, log, target, "b ")
    await _mutate_append(relay, log, target, "c ")
    final = await relay.message(log.channel_id, target)
    assert final is not None and final["data"] == "a b c "


async def test_an_append_to_a_message_retention_removed_is_refused(
    sqlite_store: SqliteStore,
) -> None:
    log = await sqlite_store.channel("app", "trimmed-stream")
    (target,) = (await _append(sqlite_store, log, [{"data": "", "timestamp": 1}])).seqs
    await _mutate_append(sqlite_store, log, target, "kept in the writer ")
    await sqlite_store.trim(log.channel_id, target, 100)
    with pytest.raises(AblyError) as refused:
        await _mutate_append(sqlite_store, log, target, "too late")
    assert refused.value.code == 40400


async def test_a_database_in_the_layout_clustered_by_channel_opens_in_the_log_layout(
    db_path: str,
) -> None:
    store = SqliteStore(db_path)
    await store.open()
    logs = [await store.channel("app", name) for name in ("older-a", "older-b")]
    for seq in range(1, 4):
        for log in logs:
            await _append(store, log, [_message(seq)], [f"id-{seq}"])
    before = [(await _mutate_append(store, logs[0], 1, f" {i}")).seq for i in range(3)]
    await store.close()
    with sqlite3.connect(db_path) as older:  # as releases before the log layout made it
        older.executescript(
            "CREATE TABLE old_versions (channel_id INTEGER NOT NULL, seq INTEGER NOT NULL, "
            "target_seq INTEGER NOT NULL, body BLOB NOT NULL, PRIMARY KEY (channel_id, seq)) "
            "WITHOUT ROWID; "
            "INSERT INTO old_versions SELECT channel_id, seq, target_seq, body FROM versions; "
            "DROP TABLE versions; ALTER TABLE old_versions RENAME TO versions; "
            "CREATE INDEX versions_by_message ON versions (channel_id, target_seq, seq);"
        )
        older.executescript(
            "CREATE TABLE clustered (channel_id INTEGER NOT NULL, seq INTEGER NOT NULL, "
            "timestamp INTEGER NOT NULL, body BLOB NOT NULL, PRIMARY KEY (channel_id, seq)) "
            "WITHOUT ROWID; "
            "INSERT INTO clustered SELECT channel_id, seq, timestamp, body FROM messages; "
            "DROP TABLE messages; ALTER TABLE clustered RENAME TO messages; "
            "CREATE INDEX messages_by_time ON messages (channel_id, timestamp); "
            "CREATE TABLE ids (channel_id INTEGER NOT NULL, message_id TEXT NOT NULL, "
            "seq INTEGER NOT NULL, PRIMARY KEY (channel_id, message_id)) WITHOUT ROWID; "
            "INSERT INTO ids SELECT channel_id, message_id, seq FROM idempotency; "
            "DROP TABLE idempotency; ALTER TABLE ids RENAME TO idempotency;"
        )
    store = SqliteStore(db_path)
    await store.open()
    try:
        a, b = logs
        assert await _data(store, HistoryQuery(a.channel_id, limit=10)) == ["m3", "m2", "m1 0 1 2"]
        again = await _append(store, b, [_message(2)], ["id-2"])
        assert (again.seqs, again.fresh) == ([2], [False])
        assert (await _append(store, b, [_message(4)], ["id-4"])).seqs == [4]
        assert await _data(store, HistoryQuery(b.channel_id, limit=2)) == ["m4", "m3"]
        for i in range(3, 70):
            await _mutate_append(store, a, 1, f" {i}")
        final = await store.message(a.channel_id, 1)
        assert final is not None and final["data"] == "m1" + "".join(f" {i}" for i in range(70))
        versions = await store.versions(
            a.channel_id, 1, HistoryQuery(a.channel_id, limit=100, forwards=True)
        )
        assert [v.message["data"] for v in versions] == ["m1", *(f" {i}" for i in range(70))]
        assert [v.seq for v in versions[1:4]] == before
        start = before[0] - 1
        replayed = await store.events(a.channel_id, start, start, before[-1], 10)
        assert [(e.seq, e.message["data"]) for e in replayed] == [
            (seq, f" {i}") for i, seq in enumerate(before)
        ]
    finally:
        await store.close()
    with sqlite3.connect(db_path) as migrated:
        tables = {name for (name,) in migrated.execute("SELECT name FROM sqlite_master")}
    assert not {"messages_before", "idempotency_before", "versions_before"} & tables
    assert {"messages", "messages_by_seq", "idempotency"} <= tables
    assert not {"messages_by_time", "versions_by_message"} & tables
    assert {"versions", "versions_by_seq"} <= tables


async def test_two_stores_on_one_file_number_a_channel_without_gaps_or_repeats(
    two_stores: tuple[SqliteStore, SqliteStore],
) -> None:
    relay, other = two_stores
    log = await relay.channel("app", "two-writers")
    seqs = []
    for i in range(6):
        store = relay if i % 3 else other
        seqs += (await _append(store, log, [_message(i)])).seqs
    assert seqs == list(range(1, 7))


async def test_a_replaced_channel_numbers_on_from_its_new_last_seq(
    sqlite_store: SqliteStore,
) -> None:
    log = await sqlite_store.channel("app", "replaced")
    await _append(sqlite_store, log, [_message(1), _message(2)])
    channel_id = await sqlite_store.replace_channel("app", "replaced", log.epoch, 40, 1)
    replaced = ChannelLog(channel_id, log.epoch, 40)
    assert (await _append(sqlite_store, replaced, [_message(41)])).seqs == [41]
