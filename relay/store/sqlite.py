"""The embedded store: one SQLite database in WAL mode, written by a single group-commit thread.

Every write goes through one writer thread. It takes everything queued since its last commit and
commits it as ONE transaction, so the cost of a durable commit (an fsync with synchronous=FULL)
is shared by every publish that arrived meanwhile: throughput grows with load instead of being
capped at one fsync per message. Serials, idempotency and aggregates are decided inside that
transaction, so what the channel layer learns from a completion is what is on disk. Completions
are handed back to the event loop in one callback per commit, in submission order, which is what
lets the channel layer deliver in serial order. Reads use their own connection (WAL lets them
run beside the writer).

One faulty operation never fails the others: when a group commit fails, its operations are
committed again one by one, so only the faulty one reports an error. The writer thread is
supervised: if it dies (a failing ROLLBACK, say), every operation in flight or queued is failed,
the connection is reopened and writing resumes; nothing waits forever.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import secrets
import shutil
import sqlite3
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import aiosqlite

from channel_relay.auth.keys import ApiKey
from channel_relay.auth.revocation import Revocation
from channel_relay.protocol.actions import MessageAction, PresenceAction
from channel_relay.protocol.errors import AblyError
from channel_relay.protocol.serials import format_serial, new_epoch
from channel_relay.store.appends import APPENDS_PER_ROW, fold, pending_query
from channel_relay.store.base import (
    CHANNEL_TABLES,
    ChannelLog,
    HistoryQuery,
    LogEvent,
    Mutate,
    MutateResult,
    PresenceEvents,
    Publish,
    PublishResult,
    StoredMessage,
    StoredVersion,
    WriteOp,
)
from channel_relay.store.commit_hook import CommitHook, report_commit
from channel_relay.store.completion import (
    Call,
    CompletionScope,
    Outcome,
    complete,
    no_scope,
    settle,
)
from channel_relay.store.health import WriteHealth, ready_check_value
from channel_relay.store.reads import LogReads
from channel_relay.store.rows import pack, page_clause, unpack
from channel_relay.store.schema import apply_schema

__all__ = ["SqliteStore"]

log = logging.getLogger(__name__)

# Bounds one transaction so a flood of tiny publishes still commits (and ACKs) steadily.
_MAX_OPS_PER_COMMIT = 4096
# Aggregates of recently changed messages the writer keeps (by channel_id and seq), so a
# stream of appends to one message neither reads nor unpacks it back from disk each time.
_RECENT_AGGREGATES = 4096
# Channels whose last seq the writer remembers at most (it starts again from empty beyond).
_KNOWN_CHANNELS = 100_000
# Pages the write-ahead log grows to before a commit copies them back into the database (SQLite's
# default is 1,000). A busy commit dirties a page of each channel it touches; copying back less
# often writes a page that many commits rewrote once (a third fewer bytes written per publish,
# and less CPU, under the durable load of `python -m bench`). The log stays under ~40 MB.
_WAL_CHECKPOINT_PAGES = 10_000
# The writer's page cache (SQLite's default is 2 MiB, ~500 pages). A busy commit dirties a page
# or two of every channel it touches; once they outnumber the cache, SQLite spills dirty pages
# into the log in the middle of the transaction and reads them back (the store alone, 200
# streams appended to 400 at a time: ~17% of the writer's CPU per append). 32 MiB holds the
# pages of the largest commit (_MAX_OPS_PER_COMMIT appends, two index pages each).
_CACHE_KIB = 32 * 1024
# Pause before reopening the database after the writer failed to, so a lasting fault (a
# missing volume) does not spin.
_REOPEN_DELAY = 0.5


_Op = WriteOp | Call


class SqliteStore(LogReads):
    """The SQLite implementation of `channel_relay.store.base.Store`.

    `path` None makes a throwaway database in a temporary directory, removed at close, with
    fsync off: for tests and `--memory`, where nothing is meant to outlive the process.
    """

    def __init__(self, path: str | None) -> None:
        self._tmpdir: str | None = None
        if path is None:
            self._tmpdir = tempfile.mkdtemp(prefix="relay-")
            path = str(Path(self._tmpdir) / "relay.db")
            self._synchronous = "OFF"
        else:
            self._synchronous = "FULL"
        self.path = path
        self._queue: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._reader: aiosqlite.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # The node this store writes for: presence members are recorded as its (set by the relay
        # before it opens the store).
        self.node_id = ""
        # Called by the writer thread after each commit with (operations, seconds): metrics.
        self.on_commit: CommitHook | None = None
        self.completions: CompletionScope = no_scope
        self.health = WriteHealth()

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = self._loop.create_future()
        self._thread = threading.Thread(
            target=self._run_writer, args=(ready,), name="relay-store-writer", daemon=True
        )
        self._thread.start()
        await ready
        self._reader = await aiosqlite.connect(self.path)
        await self._reader.execute("PRAGMA query_only = ON")

    async def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        if self._reader is not None:
            await self._reader.close()
            self._reader = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)

    # Writes

    def submit(self, op: WriteOp) -> None:
        self._queue.put(op)

    async def _write(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        assert self._loop is not None
        future = self._loop.create_future()
        self._queue.put(Call(fn, future))
        return await future

    async def channel(self, app_id: str, name: str) -> ChannelLog:
        found = await self.find_channel(app_id, name)
        if found is not None:
            return found
        row = await self._write(lambda db: _create_channel(db, app_id, name))
        return await self._channel_log(row)

    async def add_keys(self, keys: Sequence[ApiKey]) -> None:
        rows = [(k.name, k.app_id, k.secret, k.capability.to_json()) for k in keys]
        await self._write(
            lambda db: db.executemany(
                "INSERT OR REPLACE INTO keys (key_name, app_id, secret, capability) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )
        )

    async def set_setting(self, name: str, value: str) -> None:
        await self._write(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)", (name, value)
            )
        )

    async def claim_nonce(self, key_name: str, nonce: str, expires_ms: int, now_ms: int) -> bool:
        def claim(db: sqlite3.Connection) -> bool:
            db.execute("DELETE FROM nonces WHERE expires < ?", (now_ms,))
            inserted = db.execute(
                "INSERT OR IGNORE INTO nonces (key_name, nonce, expires) VALUES (?, ?, ?)",
                (key_name, nonce, expires_ms),
            ).rowcount
            return inserted == 1

        return await self._write(claim)

    async def add_revocations(self, revocations: Sequence[Revocation], horizon_ms: int) -> None:
        rows = [(r.key_name, r.kind, r.value, r.issued_before, r.applies_at) for r in revocations]

        def add(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM revocations WHERE applies_at < ?", (horizon_ms,))
            db.executemany(
                "INSERT INTO revocations (key_name, kind, value, issued_before, applies_at) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )

        await self._write(add)

    async def node_alive(self, node_id: str, now_ms: int, ttl_ms: int) -> None:
        def alive(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO nodes (node_id, heartbeat) VALUES (?, ?)", (node_id, now_ms)
            )
            horizon = now_ms - ttl_ms
            db.execute(
                "DELETE FROM connections WHERE dropped_at < ? OR (dropped_at IS NULL AND node_id "
                "NOT IN (SELECT node_id FROM nodes WHERE heartbeat >= ?))",
                (horizon, horizon),
            )
            db.execute("DELETE FROM nodes WHERE heartbeat < ?", (horizon,))

        await self._write(alive)

    async def save_connection(
        self, connection_id: str, app_id: str, key_hash: str, node_id: str
    ) -> None:
        await self._write(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO connections "
                "(connection_id, app_id, key_hash, node_id, dropped_at) VALUES (?, ?, ?, ?, NULL)",
                (connection_id, app_id, key_hash, node_id),
            )
        )

    async def drop_connections(
        self, node_id: str, connection_ids: Sequence[str], at_ms: int
    ) -> None:
        rows = [(at_ms, cid, node_id) for cid in connection_ids]
        await self._write(
            lambda db: db.executemany(
                "UPDATE connections SET dropped_at = ? WHERE connection_id = ? AND node_id = ?",
                rows,
            )
        )

    async def forget_connections(self, node_id: str, connection_ids: Sequence[str]) -> None:
        rows = [(cid, node_id) for cid in connection_ids]
        await self._write(
            lambda db: db.executemany(
                "DELETE FROM connections WHERE connection_id = ? AND node_id = ?", rows
            )
        )

    async def claim_connection(
        self,
        connection_id: str,
        app_id: str,
        key_hash: str,
        node_id: str,
        now_ms: int,
        ttl_ms: int,
    ) -> bool | None:
        def claim(db: sqlite3.Connection) -> bool | None:
            row = db.execute(
                "SELECT c.app_id, c.key_hash, coalesce(c.dropped_at, n.heartbeat, 0) "
                "FROM connections c LEFT JOIN nodes n ON n.node_id = c.node_id "
                "WHERE c.connection_id = ?",
                (connection_id,),
            ).fetchone()
            if row is None:
                return None
            if now_ms - row[2] > ttl_ms:
                db.execute("DELETE FROM connections WHERE connection_id = ?", (connection_id,))
                return None
            if row[0] != app_id or not secrets.compare_digest(row[1], key_hash):
                return False
            db.execute(
                "UPDATE connections SET node_id = ?, dropped_at = NULL WHERE connection_id = ?",
                (node_id, connection_id),
            )
            db.execute(
                "UPDATE presence_members SET node_id = ? WHERE connection_id = ?",
                (node_id, connection_id),
            )
            return True

        return await self._write(claim)

    async def claim_orphans(
        self, node_id: str, alive_since_ms: int
    ) -> list[tuple[str, str, dict[str, Any]]]:
        def claim(db: sqlite3.Connection) -> list[tuple[str, str, dict[str, Any]]]:
            rows = db.execute(
                "SELECT m.channel_id, m.member_key, c.app_id, c.name, m.body "
                "FROM presence_members m JOIN channels c ON c.id = m.channel_id "
                "WHERE m.node_id != ? AND m.node_id NOT IN "
                "(SELECT node_id FROM nodes WHERE heartbeat >= ?)",
                (node_id, alive_since_ms),
            ).fetchall()
            db.executemany(
                "UPDATE presence_members SET node_id = ? WHERE channel_id = ? AND member_key = ?",
                [(node_id, cid, key) for cid, key, *_ in rows],
            )
            return [(app_id, name, unpack(body)) for _, _, app_id, name, body in rows]

        return await self._write(claim)

    async def add_app(self, app_id: str, spec: str, keys: Sequence[ApiKey]) -> None:
        rows = [(k.name, k.app_id, k.secret, k.capability.to_json()) for k in keys]

        def add(db: sqlite3.Connection) -> None:
            db.execute("INSERT OR REPLACE INTO apps (app_id, spec) VALUES (?, ?)", (app_id, spec))
            db.executemany(
                "INSERT OR REPLACE INTO keys (key_name, app_id, secret, capability) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )

        await self._write(add)

    async def delete_app_data(self, app_id: str, *, keep_app: bool = False) -> None:
        await self._write(lambda db: _delete_app_data(db, app_id, keep_app))

    async def add_stats(self, app_id: str, intervals: Sequence[tuple[int, str]]) -> None:
        rows = [(app_id, start, entries) for start, entries in intervals]
        await self._write(
            lambda db: db.executemany(
                "INSERT OR REPLACE INTO stats (app_id, interval_start, entries) VALUES (?, ?, ?)",
                rows,
            )
        )

    # Operations: readiness, shutdown, retention

    async def ping(self, size: int = 0) -> None:
        value = ready_check_value(size)
        await self._write(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO settings (name, value) VALUES ('ready_check', ?)",
                (value,),
            )
        )

    async def flush(self) -> None:
        # The queue is FIFO and completions are reported in order: once this no-op is
        # settled, everything submitted before it has been committed and reported.
        await self._write(lambda db: None)

    async def replace_channel(
        self, app_id: str, name: str, epoch: str, last_seq: int, first_seq: int
    ) -> int:
        return await self._write(
            lambda db: _replace_channel(db, app_id, name, epoch, last_seq, first_seq)
        )

    async def add_log_rows(
        self,
        channel_id: int,
        messages: Sequence[StoredMessage],
        versions: Sequence[StoredVersion],
        presence: Sequence[StoredMessage],
    ) -> None:
        def add(db: sqlite3.Connection) -> None:
            db.executemany(
                "INSERT INTO messages (channel_id, seq, timestamp, body) VALUES (?, ?, ?, ?)",
                [(channel_id, m.seq, m.message["timestamp"], pack(m.message)) for m in messages],
            )
            db.executemany(
                "INSERT INTO versions (channel_id, seq, target_seq, body) VALUES (?, ?, ?, ?)",
                [(channel_id, v.seq, v.target_seq, pack(v.message)) for v in versions],
            )
            db.executemany(
                "INSERT INTO presence (channel_id, seq, connection_id, timestamp, body) "
                "VALUES (?, ?, ?, ?, ?)",
                [
                    (channel_id, p.seq, p.message["connectionId"], p.message["timestamp"],
                     pack(p.message))
                    for p in presence
                ],
            )  # fmt: skip

        await self._write(add)

    async def trim(self, channel_id: int, upto_seq: int, batch: int) -> tuple[int, int]:
        return await self._write(lambda db: _trim(db, channel_id, upto_seq, batch))

    # Reads: messages come with the appends their rows leave out folded in

    async def history(self, query: HistoryQuery) -> list[StoredMessage]:
        # A page walks the channel in seq order and stops at its limit: time bounds filter
        # along the way (there is no timestamp index: schema.py).
        where, params = page_clause(query, with_time=True)
        rows = await self._fetchall(
            f"SELECT seq, body, folded_seq FROM messages WHERE channel_id = ? {where}", params
        )
        return [StoredMessage(seq, m) for seq, m in await self._whole(query.channel_id, rows)]

    async def message(self, channel_id: int, seq: int) -> dict[str, Any] | None:
        row = await self._fetchone(
            "SELECT seq, body, folded_seq FROM messages WHERE channel_id = ? AND seq = ?",
            (channel_id, seq),
        )
        return None if row is None else (await self._whole(channel_id, [row]))[0][1]

    async def events(
        self, channel_id: int, start_seq: int, after_seq: int, until_seq: int, limit: int
    ) -> list[LogEvent]:
        rows = await self._fetchall(
            "SELECT seq, seq, body, folded_seq FROM messages WHERE channel_id = ? AND seq > ? "
            "AND seq <= ? "
            "UNION ALL "
            "SELECT seq, target_seq, body, NULL FROM versions WHERE channel_id = ? AND seq > ? "
            "AND seq <= ? AND target_seq <= ? AND seq != target_seq "
            "ORDER BY 1 LIMIT ?",
            (channel_id, after_seq, until_seq, channel_id, after_seq, until_seq, start_seq, limit),
        )
        messages = dict(
            await self._whole(
                channel_id,
                [(seq, body, folded) for seq, target, body, folded in rows if seq == target],
            )
        )
        return [
            LogEvent(seq, target, messages[seq] if seq == target else unpack(body))
            for seq, target, body, _ in rows
        ]

    async def _whole(
        self, channel_id: int, rows: Sequence[tuple[int, bytes, int | None]]
    ) -> list[tuple[int, dict[str, Any]]]:
        """Message rows (seq, body, folded_seq) as (seq, latest aggregate)."""
        messages = [(seq, unpack(body)) for seq, body, _ in rows]
        marked = [(seq, folded) for seq, _, folded in rows if folded is not None]
        if not marked:
            return messages
        appends: dict[int, list[bytes]] = {}
        for target, body in await self._fetchall(*pending_query(channel_id, marked)):
            appends.setdefault(target, []).append(body)
        return [(seq, fold(m, appends[seq]) if seq in appends else m) for seq, m in messages]

    async def _last_before(self, channel_id: int, before_ms: int) -> int:
        # No timestamp index here (schema.py): timestamps never decrease along seq, so a
        # binary search over the seq index finds the last message stamped before `before_ms`.
        # It runs inside SQLite (_LAST_BEFORE), two reads in all, where a read per step from
        # here cost ~12 ms for a channel of 100,000 messages.
        ends = await self._fetchall(_ENDS, (channel_id, channel_id))
        if not ends or ends[0][1] >= before_ms:
            return 0
        (low, _), (high, high_stamp) = ends[0], ends[-1]
        if high_stamp < before_ms:
            return high
        bounds = {"low": low, "high": high, "before": before_ms, "channel": channel_id}
        return int((await self._fetchone(_LAST_BEFORE, bounds))[0])

    async def idempotent_seqs(self, channel_id: int, ids: Sequence[str]) -> dict[str, int]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = await self._fetchall(
            f"SELECT message_id, seq FROM idempotency WHERE channel_id = ? "
            f"AND message_id IN ({marks})",
            (channel_id, *ids),
        )
        return dict(rows)

    async def _fetchone(self, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> Any:
        assert self._reader is not None
        async with self._reader.execute(sql, params) as cursor:
            return await cursor.fetchone()

    async def _fetchall(self, sql: str, params: Sequence[Any]) -> list[Any]:
        assert self._reader is not None
        async with self._reader.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    # The writer thread

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute(f"PRAGMA synchronous = {self._synchronous}")
            db.execute(f"PRAGMA wal_autocheckpoint = {_WAL_CHECKPOINT_PAGES}")
            db.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
            apply_schema(db)
        except sqlite3.Error:
            db.close()
            raise
        return db

    def _run_writer(self, ready: asyncio.Future[None]) -> None:
        """Open the database and serve the queue; reopen it whenever serving fails."""
        assert self._loop is not None
        loop = self._loop
        try:
            db = self._connect()
        except sqlite3.Error as exc:
            loop.call_soon_threadsafe(settle, ready, None, exc)
            return
        loop.call_soon_threadsafe(settle, ready, None, None)
        while True:
            in_flight: list[_Op] = []
            stopping = False
            try:
                if self._serve(db, in_flight):
                    return
            except Exception as exc:
                log.exception("store writer failed; failing pending operations and reopening")
                stopping = self._fail_pending(in_flight, exc)
            finally:
                db.close()
            reopened = None if stopping else self._reopen()
            if reopened is None:
                return
            db = reopened

    def _reopen(self) -> sqlite3.Connection | None:
        """A new writer connection; None when a stop arrived while the database could not be
        opened."""
        while True:
            try:
                return self._connect()
            except sqlite3.Error as exc:
                log.error("store writer cannot open the database: %s", exc)
                if self._fail_pending([], exc):
                    return None
                time.sleep(_REOPEN_DELAY)

    def _fail_pending(self, in_flight: list[_Op], error: BaseException) -> bool:
        """Fail `in_flight` and everything queued; True when a stop was among them."""
        assert self._loop is not None
        pending = list(in_flight)
        stop = self._take_queued(pending, limit=None)
        if pending:
            self._loop.call_soon_threadsafe(
                _complete, pending, [(None, error)] * len(pending), self.health, self.completions
            )
        return stop

    def _take_queued(self, into: list[_Op], limit: int | None) -> bool:
        """Move what is queued into `into` (up to `limit` in all) without waiting; True when a
        stop was taken."""
        while limit is None or len(into) < limit:
            try:
                op = self._queue.get_nowait()
            except queue.Empty:
                return False
            if op is None:
                return True
            into.append(op)
        return False

    def _serve(self, db: sqlite3.Connection, in_flight: list[_Op]) -> bool:
        """Commit the queue batch by batch until a stop (True); raises if the database fails
        in a way a rollback cannot undo. `in_flight` holds the batch being committed."""
        assert self._loop is not None
        known = _Committed(db)
        while True:
            first = self._queue.get()
            if first is None:
                return True
            in_flight[:] = [first]
            stop = self._take_queued(in_flight, limit=_MAX_OPS_PER_COMMIT)
            started = time.perf_counter()
            outcomes = _commit(db, in_flight, self.node_id, known)
            report_commit(self.on_commit, len(in_flight), time.perf_counter() - started)
            self._loop.call_soon_threadsafe(
                _complete, list(in_flight), outcomes, self.health, self.completions
            )
            in_flight.clear()
            if stop:
                return True


def _create_channel(db: sqlite3.Connection, app_id: str, name: str) -> tuple[int, str, int]:
    db.execute(
        "INSERT OR IGNORE INTO channels (app_id, name, epoch, last_seq) VALUES (?, ?, ?, 0)",
        (app_id, name, new_epoch()),
    )
    return db.execute(
        "SELECT id, epoch, last_seq FROM channels WHERE app_id = ? AND name = ?",
        (app_id, name),
    ).fetchone()


def _replace_channel(
    db: sqlite3.Connection, app_id: str, name: str, epoch: str, last_seq: int, first_seq: int
) -> int:
    row = db.execute(
        "SELECT id FROM channels WHERE app_id = ? AND name = ?", (app_id, name)
    ).fetchone()
    if row is not None:
        for table in CHANNEL_TABLES:
            db.execute(f"DELETE FROM {table} WHERE channel_id = ?", row)
        db.execute("DELETE FROM channels WHERE id = ?", row)
    channel_id = db.execute(
        "INSERT INTO channels (app_id, name, epoch, last_seq) VALUES (?, ?, ?, ?)",
        (app_id, name, epoch, last_seq),
    ).lastrowid
    if first_seq > 1:
        db.execute(
            "INSERT INTO trimmed (channel_id, trimmed_seq) VALUES (?, ?)",
            (channel_id, first_seq - 1),
        )
    return int(channel_id or 0)


def _delete_app_data(db: sqlite3.Connection, app_id: str, keep_app: bool) -> None:
    channels = "SELECT id FROM channels WHERE app_id = ?"
    for table in CHANNEL_TABLES:
        db.execute(f"DELETE FROM {table} WHERE channel_id IN ({channels})", (app_id,))
    db.execute("DELETE FROM channels WHERE app_id = ?", (app_id,))
    db.execute("DELETE FROM stats WHERE app_id = ?", (app_id,))
    if not keep_app:
        db.execute("DELETE FROM keys WHERE app_id = ?", (app_id,))
        db.execute("DELETE FROM apps WHERE app_id = ?", (app_id,))


def _trim(db: sqlite3.Connection, channel_id: int, upto_seq: int, batch: int) -> tuple[int, int]:
    """One retention step: the oldest `batch` messages at or below `upto_seq` and the versions
    up to the last of them. channels.last_seq is untouched. Idempotency ids stay (a retry of
    a removed message still gets its serial, not a second copy)."""
    row = db.execute(
        "SELECT seq FROM messages WHERE channel_id = ? AND seq <= ? ORDER BY seq LIMIT 1 OFFSET ?",
        (channel_id, upto_seq, batch - 1),
    ).fetchone()
    end = row[0] if row is not None else upto_seq
    removed = db.execute(
        "DELETE FROM messages WHERE channel_id = ? AND seq <= ?", (channel_id, end)
    ).rowcount
    db.execute("DELETE FROM versions WHERE channel_id = ? AND seq <= ?", (channel_id, end))
    db.execute(
        "INSERT INTO trimmed (channel_id, trimmed_seq) VALUES (?, ?) ON CONFLICT (channel_id) "
        "DO UPDATE SET trimmed_seq = max(trimmed_seq, excluded.trimmed_seq)",
        (channel_id, end),
    )
    return removed, end


def _commit(
    db: sqlite3.Connection, ops: list[_Op], node_id: str, known: _Committed
) -> list[Outcome]:
    """Commit `ops` as one transaction; if that fails, each in a transaction of its own, so
    only a faulty op reports an error. Raises when a failed transaction cannot be rolled back."""
    try:
        return _transaction(db, ops, node_id, known)
    except Exception as exc:
        _rollback(db)
        if len(ops) == 1:
            log.warning("store commit failed: %s", exc)
            return [(None, exc)]
        log.warning("group commit of %d operations failed (%s); retrying one by one", len(ops), exc)
    outcomes: list[Outcome] = []
    for op in ops:
        try:
            outcomes.extend(_transaction(db, [op], node_id, known))
        except Exception as exc:
            _rollback(db)
            log.warning("store commit of one operation failed: %s", exc)
            outcomes.append((None, exc))
    return outcomes


def _rollback(db: sqlite3.Connection) -> None:
    if db.in_transaction:
        db.execute("ROLLBACK")


def _transaction(
    db: sqlite3.Connection, ops: list[_Op], node_id: str, known: _Committed
) -> list[Outcome]:
    db.execute("BEGIN IMMEDIATE")
    known.check()
    writer = _Writes(db, node_id, known)
    outcomes = [writer.apply(op) for op in ops]
    writer.finish()
    try:
        db.execute("COMMIT")
    except sqlite3.Error:
        # No transaction left open: rolled back, or committed after all (SQLite reports an
        # interrupt that arrives once the commit is done as the COMMIT's error).
        if db.in_transaction or not writer.landed():
            raise
    known.committed(writer)
    return outcomes


# The first and the last message of a channel, with their timestamps.
_ENDS = (
    "SELECT * FROM (SELECT seq, timestamp FROM messages WHERE channel_id = ? ORDER BY seq LIMIT 1) "
    "UNION ALL "
    "SELECT * FROM (SELECT seq, timestamp FROM messages WHERE channel_id = ? "
    "ORDER BY seq DESC LIMIT 1)"
)

# Binary search along a channel's seq index: `low` is a message stamped before the bound, and no
# message from `high` on is. Each step looks at the first message at or after the middle (seqs
# have gaps: versions take seqs too) and moves one end there. (SQLite allows the recursive table
# once, directly in the step's FROM, so the middle message is looked up in each place it is used.)
_MIDDLE = (
    "(SELECT {} FROM messages WHERE channel_id = :channel AND seq >= (low + high) / 2 "
    "AND seq < high ORDER BY seq LIMIT 1)"
)
_LAST_BEFORE = f"""
WITH RECURSIVE search(low, high) AS (
    SELECT :low, :high
    UNION ALL
    SELECT
        CASE WHEN {_MIDDLE.format("timestamp")} < :before THEN {_MIDDLE.format("seq")} ELSE low END,
        CASE WHEN {_MIDDLE.format("timestamp")} < :before THEN high ELSE (low + high) / 2 END
    FROM search WHERE high - low > 1
)
SELECT low FROM search WHERE high - low <= 1 LIMIT 1
"""


class _Held(NamedTuple):
    """A changed message as the writer holds it."""

    aggregate: dict[str, Any]
    # Appends its row leaves out (None: the row is its latest aggregate, unmarked).
    pending: int | None
    # The seq of its latest version, and whether its row is to be rewritten at commit.
    version: int
    rewrite: bool


class _Committed:
    """What the writer remembers of its commits: each channel's last seq, and the aggregates
    of recently changed messages.

    Only what a commit wrote gets in, so a failed transaction leaves nothing behind. Any other
    kind of write (retention, a channel replaced, an app's data deleted) may change channels
    and messages underneath, and so may another process writing the file (the CLI): either
    empties it.
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.aggregates: OrderedDict[tuple[int, int], _Held] = OrderedDict()
        self.last_seqs: dict[int, int] = {}
        # SQLite's count of commits by other connections, as of the last look.
        self.data_version = self._data_version()

    def _data_version(self) -> int:
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    def check(self) -> None:
        """Inside a transaction: forget everything if another connection wrote since."""
        version = self._data_version()
        if version != self.data_version:
            self.data_version = version
            self.forget()

    def forget(self) -> None:
        self.aggregates.clear()
        self.last_seqs.clear()

    def committed(self, writes: _Writes) -> None:
        if writes.changed is None:
            self.forget()
            return
        aggregates = self.aggregates
        for key, held in writes.changed.items():
            aggregates[key] = held
            aggregates.move_to_end(key)
        while len(aggregates) > _RECENT_AGGREGATES:
            aggregates.popitem(last=False)
        if len(self.last_seqs) > _KNOWN_CHANNELS:
            self.last_seqs.clear()
        self.last_seqs.update(writes.last_seqs)


class _Writes:
    """The writes of one transaction. Each channel's last seq is read once and written back at
    the end, and so is each changed message's aggregate (several appends to one message in a
    commit rewrite it once); everything else is written as it comes, so later ops of the same
    transaction see earlier ones (an id stored twice)."""

    def __init__(self, db: sqlite3.Connection, node_id: str, known: _Committed) -> None:
        self.db = db
        self.cursor = db.cursor()
        self.node_id = node_id
        self.known = known
        self.last_seqs: dict[int, int] = {}
        self.presence_seqs: dict[int, int] = {}
        self.touched: set[int] = set()
        # Aggregates this transaction changed, by (channel_id, seq); None once an arbitrary
        # write ran (it may have changed messages: nothing is kept from this transaction).
        self.changed: dict[tuple[int, int], _Held] | None = {}
        # Version rows of this transaction not inserted yet: one statement for all of them, at
        # the end or before an arbitrary write (a statement per append was the writer's
        # largest share of a token stream). Nothing reads them back before: a message changed
        # in this transaction is held in `changed`, not loaded.
        self.versions: list[tuple[int, int, int, bytes]] = []

    def apply(self, op: _Op) -> Outcome:
        if isinstance(op, Publish):
            return self.publish(op), None
        if isinstance(op, Mutate):
            try:
                return self.mutate(op), None
            except AblyError as refused:  # raised before anything is written
                return None, refused
        if isinstance(op, PresenceEvents):
            self.presence(op)
            return None, None
        self.write_aggregates()
        self.changed = None
        self.db.execute("SAVEPOINT op")
        try:
            result = op.fn(self.db)
        except Exception as exc:
            self.db.execute("ROLLBACK TO op")
            self.db.execute("RELEASE op")
            return None, exc
        self.db.execute("RELEASE op")
        return result, None

    def last_seq(self, channel_id: int) -> int:
        last = self.last_seqs.get(channel_id)
        if last is None and self.changed is not None:
            last = self.known.last_seqs.get(channel_id)
            if last is not None:
                self.last_seqs[channel_id] = last
        if last is None:
            row = self.db.execute(
                "SELECT last_seq FROM channels WHERE id = ?", (channel_id,)
            ).fetchone()
            if row is None:
                raise LookupError(f"channel {channel_id} is not in the store")
            last = self.last_seqs[channel_id] = row[0]
        return last

    def take_seq(self, channel_id: int) -> int:
        seq = self.last_seq(channel_id) + 1
        self.last_seqs[channel_id] = seq
        self.touched.add(channel_id)
        return seq

    def publish(self, op: Publish) -> PublishResult:
        db, cid = self.db, op.channel_id
        seqs: list[int] = []
        fresh: list[bool] = []
        if not op.messages:
            return PublishResult(seqs, fresh)
        # The channel's last seq is read once per publish, and its statements run on one
        # cursor (Connection.execute makes a cursor per call): this runs for every message.
        cursor = self.cursor
        start = last = self.last_seq(cid)
        for message, mid in zip(op.messages, op.idempotent_ids, strict=True):
            seq = last + 1
            # Claiming the id is also the lookup: a row already there keeps it (a retry).
            if mid is not None and not self.claim(cid, mid, seq):
                row = db.execute(
                    "SELECT seq FROM idempotency WHERE message_id = ? AND channel_id = ?",
                    (mid, cid),
                ).fetchone()
                seqs.append(row[0])
                fresh.append(False)
                continue
            last = seq
            body = {**message, "serial": format_serial(op.epoch, seq)}
            cursor.execute(
                "INSERT INTO messages (channel_id, seq, timestamp, body) VALUES (?, ?, ?, ?)",
                (cid, seq, message["timestamp"], pack(body)),
            )
            seqs.append(seq)
            fresh.append(True)
        if last != start:
            self.last_seqs[cid] = last
            self.touched.add(cid)
        return PublishResult(seqs, fresh)

    def claim(self, channel_id: int, message_id: str, seq: int) -> bool:
        """Store `message_id` for `seq` of the channel; False when the channel has it already."""
        return (
            self.cursor.execute(
                "INSERT OR IGNORE INTO idempotency (message_id, channel_id, seq) VALUES (?, ?, ?)",
                (message_id, channel_id, seq),
            ).rowcount
            == 1
        )

    def mutate(self, op: Mutate) -> MutateResult:
        db, cid, target = self.db, op.channel_id, op.target_seq
        key = (cid, target)
        changed = self.changed
        held = None if changed is None else changed.get(key) or self.known.aggregates.get(key)
        stored = b""
        if held is None:
            held, stored = self.load(op)
        seq = self.last_seq(cid) + 1
        aggregate, operation = op.apply(held.aggregate, format_serial(op.epoch, seq))
        self.take_seq(cid)
        if "version" not in held.aggregate:
            # The message as first published, kept as its first version once it changes.
            db.execute(
                "INSERT OR IGNORE INTO versions (channel_id, seq, target_seq, body) "
                "VALUES (?, ?, ?, ?)",
                (cid, target, target, stored),
            )
        self.versions.append((cid, seq, target, pack(operation)))
        append = operation.get("action") == MessageAction.APPEND
        if changed is None:
            self.write_versions()
            db.execute(
                "UPDATE messages SET body = ?, folded_seq = NULL WHERE channel_id = ? AND seq = ?",
                (pack(aggregate), cid, target),
            )
        elif append and held.pending is not None and held.pending + 1 < APPENDS_PER_ROW:
            changed[key] = _Held(aggregate, held.pending + 1, seq, held.rewrite)
        else:
            changed[key] = _Held(aggregate, 0 if append else None, seq, True)
        return MutateResult(seq, target, aggregate, operation)

    def load(self, op: Mutate) -> tuple[_Held, bytes]:
        """The message `op` changes as it stands (the appends its row leaves out folded in),
        and its row's body."""
        key = (op.channel_id, op.target_seq)
        row = self.db.execute(
            "SELECT body, folded_seq FROM messages WHERE channel_id = ? AND seq = ?", key
        ).fetchone()
        if row is None:
            raise AblyError.not_found(
                f"No message with serial {format_serial(op.epoch, op.target_seq)!r}"
            )
        body, folded = row
        if folded is None:
            return _Held(unpack(body), None, 0, False), body
        appends = [
            version
            for (version,) in self.db.execute(
                "SELECT body FROM versions WHERE channel_id = ? AND target_seq = ? AND seq > ? "
                "ORDER BY seq",
                (*key, folded),
            )
        ]
        return _Held(fold(unpack(body), appends), len(appends), 0, False), body

    def presence(self, op: PresenceEvents) -> None:
        cid = op.channel_id
        last = self.presence_seqs.get(cid)
        if last is None:
            row = self.db.execute(
                "SELECT coalesce(max(seq), 0) FROM presence WHERE channel_id = ?", (cid,)
            ).fetchone()
            last = row[0]
        for event in op.events:
            last += 1
            self.db.execute(
                "INSERT INTO presence (channel_id, seq, connection_id, timestamp, body) "
                "VALUES (?, ?, ?, ?, ?)",
                (cid, last, event["connectionId"], event["timestamp"], pack(event)),
            )
            member = f"{event['clientId']}:{event['connectionId']}"
            if event["action"] == PresenceAction.LEAVE:
                self.db.execute(
                    "DELETE FROM presence_members WHERE channel_id = ? AND member_key = ?",
                    (cid, member),
                )
            else:
                self.db.execute(
                    "INSERT OR REPLACE INTO presence_members "
                    "(channel_id, member_key, connection_id, node_id, body) VALUES (?, ?, ?, ?, ?)",
                    (cid, member, event["connectionId"], self.node_id, pack(event)),
                )
        self.presence_seqs[cid] = last

    def write_versions(self) -> None:
        if self.versions:
            self.db.executemany(
                "INSERT INTO versions (channel_id, seq, target_seq, body) VALUES (?, ?, ?, ?)",
                self.versions,
            )
            self.versions.clear()

    def write_aggregates(self) -> None:
        """Rewrite the rows of the messages this transaction changed that are due (and insert
        its version rows first)."""
        self.write_versions()
        changed = self.changed
        if not changed:
            return
        due = [(key, held) for key, held in changed.items() if held.rewrite]
        self.db.executemany(
            "UPDATE messages SET body = ?, folded_seq = ? WHERE channel_id = ? AND seq = ?",
            [
                (pack(held.aggregate), None if held.pending is None else held.version, *key)
                for key, held in due
            ],
        )
        for key, held in due:
            pending = None if held.pending is None else 0
            changed[key] = _Held(held.aggregate, pending, held.version, False)

    def landed(self) -> bool:
        """After a failed COMMIT: whether this transaction is on disk all the same, as a
        channel it numbered shows (False when it numbered none, or the read fails)."""
        if not self.touched:
            return False
        channel_id = next(iter(self.touched))
        try:
            row = self.db.execute(
                "SELECT last_seq FROM channels WHERE id = ?", (channel_id,)
            ).fetchone()
        except sqlite3.Error:
            return False
        return row is not None and row[0] == self.last_seqs[channel_id]

    def finish(self) -> None:
        self.write_aggregates()
        self.db.executemany(
            "UPDATE channels SET last_seq = ? WHERE id = ?",
            [(self.last_seqs[cid], cid) for cid in self.touched],
        )


def _complete(
    ops: list[_Op], outcomes: list[Outcome], health: WriteHealth, scope: CompletionScope
) -> None:
    """On the event loop: readiness learns how the commit went, then each op its outcome."""
    health.record(ops, outcomes)
    complete(ops, outcomes, scope)
