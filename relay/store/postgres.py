"""The PostgreSQL store: several relay nodes on one database, the database the one truth.

Writes go through one group-commit writer task per node: everything queued since its last
commit is committed together. Consecutive publishes are ONE call of the server-side function
`relay_publish` (pg_schema.py) in autocommit: one round trip per group commit, however many
messages and channels it holds. Other writes (changes to messages, presence, the rest) are one
transaction, one round trip per kind of row. Either way the rows of the channels written are
locked, in id order so nodes never deadlock, and their sequences advanced: a channel's serials
are assigned by whichever node holds its row, at commit, in one order for every node.
Idempotency ids are checked and aggregates read under that same lock, so a retry sent to another
node, or appends to one message arriving through two nodes, come out right. Each commit ends
with a NOTIFY naming the channels and seq ranges it wrote; the other nodes deliver them from the
table (channel_relay.channels.cluster).

Failures are contained as in the SQLite store: a failed group commit is retried op by op, and a
lost connection fails the batch in flight (its outcome is unknown: it is NACKed, never ACKed)
and is replaced for the next one. Reads use a pool beside the writer's connection.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import msgpack

from channel_relay.auth.keys import ApiKey
from channel_relay.auth.revocation import Revocation
from channel_relay.protocol.actions import PresenceAction
from channel_relay.protocol.errors import AblyError
from channel_relay.protocol.serials import format_serial, new_epoch
from channel_relay.store.base import (
    CHANNEL_TABLES,
    ChannelLog,
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
from channel_relay.store.completion import Call, CompletionScope, Outcome, complete, no_scope
from channel_relay.store.health import WriteHealth, ready_check_value
from channel_relay.store.outage import ENGINE_AWAY, OutageLog
from channel_relay.store.pg_schema import (
    NOTIFY_CHANNEL,
    PG_FUNCTIONS,
    PG_SCHEMA,
    SCHEMA_LOCK,
)
from channel_relay.store.preflight import StoreOpenError
from channel_relay.store.reads import LogReads
from channel_relay.store.rows import pack, unpack

__all__ = ["PostgresStore", "location"]

log = logging.getLogger(__name__)

_MAX_OPS_PER_COMMIT = 4096
# Seconds to wait for a connection, and for any one statement, before giving up (and NACKing).
_CONNECT_TIMEOUT = 10.0
_COMMAND_TIMEOUT = 30.0
_REVOCATIONS_LOCK = 0x7265766F6B65

Conn = asyncpg.Connection
_PLACEHOLDER = re.compile(r"\?")


def _numbered(sql: str) -> str:
    """`?` placeholders (the form shared with the SQLite store) as PostgreSQL's $1, $2..."""
    # Unbounded: a read may name a page's worth of serials (1,000), one placeholder each.
    count = itertools.count(1)
    return _PLACEHOLDER.sub(lambda _: f"${next(count)}", sql)


# A Call's fn is awaited by the writer on its connection, inside a savepoint of its transaction.
_Op = WriteOp | Call


class PostgresStore(LogReads):
    """The PostgreSQL implementation of `channel_relay.store.base.Store`.

    `node_id` names this relay process in the notifications it sends, so it can tell its own
    commits (already delivered locally) from the other nodes' (the relay sets its own).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.node_id = secrets.token_hex(6)
        self._pool: asyncpg.Pool | None = None
        self._writer: Conn | None = None
        self._queue: collections.deque[_Op | None] = collections.deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Called after each commit with (operations, seconds): metrics.
        self.on_commit: CommitHook | None = None
        self.completions: CompletionScope = no_scope
        self.health = WriteHealth()
        self._outage = OutageLog(log, "the store writer (publishes are NACKed meanwhile)")

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.url,
            # No floor of idle connections: asyncpg would log a traceback at each failed
            # attempt to restore it while the server is away.
            min_size=0,
            max_size=4,
            timeout=_CONNECT_TIMEOUT,
            command_timeout=_COMMAND_TIMEOUT,
        )
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
                await conn.execute(PG_SCHEMA)
                await conn.execute(PG_FUNCTIONS)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # A relay that cannot reach its engine or is refused by it cannot serve: one line
            # saying which (not a traceback, nor a socket error mistaken for the listener's).
            await self._pool.close()
            self._pool = None
            raise StoreOpenError(_unreachable(self.url, exc)) from exc
        self._task = asyncio.get_running_loop().create_task(self._run_writer())

    async def close(self) -> None:
        if self._task is not None:
            self._queue.append(None)
            self._wake.set()
            await self._task
            self._task = None
        if self._writer is not None:
            await self._writer.close()
            self._writer = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        """The connections beside the writer's, for tables written off the log
        (channel_relay.store.pg_side)."""
        assert self._pool is not None, "the store is not open"
        return self._pool

    async def connect(self) -> Conn:
        """A connection of its own (the cluster feed's LISTEN connection)."""
        return await asyncpg.connect(
            self.url, timeout=_CONNECT_TIMEOUT, command_timeout=_COMMAND_TIMEOUT
        )

    # Writes

    def submit(self, op: WriteOp) -> None:
        self._queue.append(op)
        self._wake.set()

    async def _write(self, fn: Callable[[Conn], Awaitable[Any]]) -> Any:
        future = asyncio.get_running_loop().create_future()
        self._queue.append(Call(fn, future))
        self._wake.set()
        return await future

    async def channel(self, app_id: str, name: str) -> ChannelLog:
        found = await self.find_channel(app_id, name)
        if found is not None:
            return found
        assert self._pool is not None
        epoch = new_epoch()
        channel_id = await self._pool.fetchval(
            "INSERT INTO channels (app_id, name, epoch) VALUES ($1, $2, $3) "
            "ON CONFLICT (app_id, name) DO NOTHING RETURNING id",
            app_id,
            name,
            epoch,
        )
        if channel_id is not None:
            return ChannelLog(int(channel_id), epoch, 0)
        created = await self.find_channel(app_id, name)  # another node created it meanwhile
        assert created is not None
        return created

    async def find_channel(self, app_id: str, name: str) -> ChannelLog | None:
        # One round trip (the shared reads make three): every first publish to a channel a
        # node has not loaded waits for it.
        assert self._pool is not None
        row = await self._pool.fetchrow(
            "SELECT c.id, c.epoch, c.last_seq, "
            "(SELECT trimmed_seq FROM trimmed WHERE channel_id = c.id), "
            "(SELECT array_agg(ARRAY[after_seq, upto_seq]) FROM restored "
            "WHERE channel_id = c.id) "
            "FROM channels c WHERE c.app_id = $1 AND c.name = $2",
            app_id,
            name,
        )
        if row is None:
            return None
        channel_id, epoch, last_seq, trimmed, lost = row
        return ChannelLog(
            channel_id=channel_id,
            epoch=epoch,
            last_seq=last_seq,
            first_seq=trimmed + 1 if trimmed is not None else 1,
            lost=tuple((after, upto) for after, upto in lost or ()),
        )

    async def add_keys(self, keys: Sequence[ApiKey]) -> None:
        await self._pooled(lambda conn: _upsert_keys(conn, keys))

    async def set_setting(self, name: str, value: str) -> None:
        await self._execute(
            "INSERT INTO settings (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (name, value),
        )

    async def claim_nonce(self, key_name: str, nonce: str, expires_ms: int, now_ms: int) -> bool:
        async def claim(conn: Conn) -> bool:
            await conn.execute("DELETE FROM nonces WHERE expires < $1", now_ms)
            status = await conn.execute(
                "INSERT INTO nonces (key_name, nonce, expires) VALUES ($1, $2, $3) "
                "ON CONFLICT DO NOTHING",
                key_name,
                nonce,
                expires_ms,
            )
            return bool(status == "INSERT 0 1")

        return bool(await self._pooled(claim))

    async def add_revocations(self, revocations: Sequence[Revocation], horizon_ms: int) -> None:
        async def add(conn: Conn) -> None:
            # Ids are taken under a lock, so they commit in id order: a node reading "after
            # id N" never skips one that commits later with a smaller id.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _REVOCATIONS_LOCK)
            await conn.execute("DELETE FROM revocations WHERE applies_at < $1", horizon_ms)
            await conn.executemany(
                "INSERT INTO revocations (key_name, kind, value, issued_before, applies_at) "
                "VALUES ($1, $2, $3, $4, $5)",
                [(r.key_name, r.kind, r.value, r.issued_before, r.applies_at) for r in revocations],
            )
            # Heard by every other node at commit, which then reads what is new
            # (channel_relay.channels.cluster).
            await conn.execute(
                "SELECT pg_notify($1, $2)",
                NOTIFY_CHANNEL,
                json.dumps({"node": self.node_id, "revocations": True}, separators=(",", ":")),
            )

        await self._pooled(add)

    async def add_app(self, app_id: str, spec: str, keys: Sequence[ApiKey]) -> None:
        async def add(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO apps (app_id, spec) VALUES ($1, $2) "
                "ON CONFLICT (app_id) DO UPDATE SET spec = excluded.spec",
                app_id,
                spec,
            )
            await _upsert_keys(conn, keys)

        await self._pooled(add)

    async def delete_app_data(self, app_id: str, *, keep_app: bool = False) -> None:
        async def delete(conn: Conn) -> None:
            channels = "SELECT id FROM channels WHERE app_id = $1"
            for table in CHANNEL_TABLES:
                await conn.execute(f"DELETE FROM {table} WHERE channel_id IN ({channels})", app_id)
            await conn.execute("DELETE FROM channels WHERE app_id = $1", app_id)
            await conn.execute("DELETE FROM stats WHERE app_id = $1", app_id)
            if not keep_app:
                await conn.execute("DELETE FROM keys WHERE app_id = $1", app_id)
                await conn.execute("DELETE FROM apps WHERE app_id = $1", app_id)

        await self._pooled(delete)

    async def add_stats(self, app_id: str, intervals: Sequence[tuple[int, str]]) -> None:
        async def add(conn: Conn) -> None:
            await conn.executemany(
                "INSERT INTO stats (app_id, interval_start, entries) VALUES ($1, $2, $3) "
                "ON CONFLICT (app_id, interval_start) DO UPDATE SET entries = excluded.entries",
                [(app_id, start, entries) for start, entries in intervals],
            )

        await self._pooled(add)

    # Connections and nodes

    async def node_alive(self, node_id: str, now_ms: int, ttl_ms: int) -> None:
        async def alive(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO nodes (node_id, heartbeat) VALUES ($1, $2) "
                "ON CONFLICT (node_id) DO UPDATE SET heartbeat = excluded.heartbeat",
                node_id,
                now_ms,
            )
            horizon = now_ms - ttl_ms
            await conn.execute(
                "DELETE FROM connections WHERE dropped_at < $1 OR (dropped_at IS NULL AND "
                "node_id NOT IN (SELECT node_id FROM nodes WHERE heartbeat >= $1))",
                horizon,
            )
            await conn.execute("DELETE FROM nodes WHERE heartbeat < $1", horizon)

        await self._pooled(alive)

    async def save_connection(
        self, connection_id: str, app_id: str, key_hash: str, node_id: str
    ) -> None:
        await self._execute(
            "INSERT INTO connections (connection_id, app_id, key_hash, node_id, dropped_at) "
            "VALUES (?, ?, ?, ?, NULL) ON CONFLICT (connection_id) DO UPDATE SET "
            "app_id = excluded.app_id, key_hash = excluded.key_hash, "
            "node_id = excluded.node_id, dropped_at = NULL",
            (connection_id, app_id, key_hash, node_id),
        )

    async def drop_connections(
        self, node_id: str, connection_ids: Sequence[str], at_ms: int
    ) -> None:
        await self._execute(
            "UPDATE connections SET dropped_at = ? WHERE connection_id = ANY(?::text[]) "
            "AND node_id = ?",
            (at_ms, list(connection_ids), node_id),
        )

    async def forget_connections(self, node_id: str, connection_ids: Sequence[str]) -> None:
        await self._execute(
            "DELETE FROM connections WHERE connection_id = ANY(?::text[]) AND node_id = ?",
            (list(connection_ids), node_id),
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
        async def claim(conn: Conn) -> bool | None:
            row = await conn.fetchrow(
                "SELECT c.app_id, c.key_hash, coalesce(c.dropped_at, n.heartbeat, 0) "
                "FROM connections c LEFT JOIN nodes n ON n.node_id = c.node_id "
                "WHERE c.connection_id = $1 FOR UPDATE OF c",
                connection_id,
            )
            if row is None:
                return None
            if now_ms - row[2] > ttl_ms:
                await conn.execute(
                    "DELETE FROM connections WHERE connection_id = $1", connection_id
                )
                return None
            if row[0] != app_id or not secrets.compare_digest(row[1], key_hash):
                return False
            await conn.execute(
                "UPDATE connections SET node_id = $1, dropped_at = NULL WHERE connection_id = $2",
                node_id,
                connection_id,
            )
            await conn.execute(
                "UPDATE presence_members SET node_id = $1 WHERE connection_id = $2",
                node_id,
                connection_id,
            )
            return True

        claimed: bool | None = await self._pooled(claim)
        return claimed

    async def claim_orphans(
        self, node_id: str, alive_since_ms: int
    ) -> list[tuple[str, str, dict[str, Any]]]:
        async def claim(conn: Conn) -> list[tuple[str, str, dict[str, Any]]]:
            # One node takes each orphan: the rows are locked, and a node claiming at the same
            # time skips them.
            rows = await conn.fetch(
                "UPDATE presence_members m SET node_id = $1 FROM channels c "
                "WHERE c.id = m.channel_id AND (m.channel_id, m.member_key) IN ("
                "SELECT channel_id, member_key FROM presence_members "
                "WHERE node_id != $1 AND node_id NOT IN "
                "(SELECT node_id FROM nodes WHERE heartbeat >= $2) FOR UPDATE SKIP LOCKED) "
                "RETURNING c.app_id, c.name, m.body",
                node_id,
                alive_since_ms,
            )
            return [(app_id, name, unpack(body)) for app_id, name, body in rows]

        claimed: list[tuple[str, str, dict[str, Any]]] = await self._pooled(claim)
        return claimed

    # Fixtures: a channel's log back in as it was

    async def replace_channel(
        self, app_id: str, name: str, epoch: str, last_seq: int, first_seq: int
    ) -> int:
        async def replace(conn: Conn) -> int:
            old = await conn.fetchval(
                "SELECT id FROM channels WHERE app_id = $1 AND name = $2", app_id, name
            )
            if old is not None:
                for table in CHANNEL_TABLES:
                    await conn.execute(f"DELETE FROM {table} WHERE channel_id = $1", old)
                await conn.execute("DELETE FROM channels WHERE id = $1", old)
            channel_id = await conn.fetchval(
                "INSERT INTO channels (app_id, name, epoch, last_seq) VALUES ($1, $2, $3, $4) "
                "RETURNING id",
                app_id,
                name,
                epoch,
                last_seq,
            )
            if first_seq > 1:
                await conn.execute(
                    "INSERT INTO trimmed (channel_id, trimmed_seq) VALUES ($1, $2)",
                    channel_id,
                    first_seq - 1,
                )
            return int(channel_id)

        channel_id: int = await self._pooled(replace)
        return channel_id

    async def add_log_rows(
        self,
        channel_id: int,
        messages: Sequence[StoredMessage],
        versions: Sequence[StoredVersion],
        presence: Sequence[StoredMessage],
    ) -> None:
        async def add(conn: Conn) -> None:
            await conn.executemany(
                "INSERT INTO messages (channel_id, seq, timestamp, body) VALUES ($1, $2, $3, $4)",
                [(channel_id, m.seq, m.message["timestamp"], pack(m.message)) for m in messages],
            )
            await conn.executemany(
                "INSERT INTO versions (channel_id, seq, target_seq, body) VALUES ($1, $2, $3, $4)",
                [(channel_id, v.seq, v.target_seq, pack(v.message)) for v in versions],
            )
            await conn.executemany(
                "INSERT INTO presence (channel_id, seq, connection_id, timestamp, body) "
                "VALUES ($1, $2, $3, $4, $5)",
                [
                    (channel_id, p.seq, p.message["connectionId"], p.message["timestamp"],
                     pack(p.message))
                    for p in presence
                ],
            )  # fmt: skip
            top = max([0, *(p.seq for p in presence)])
            await conn.execute(
                "UPDATE channels SET last_presence_seq = greatest(last_presence_seq, $1) "
                "WHERE id = $2",
                top,
                channel_id,
            )

        await self._pooled(add)

    # Operations: readiness, shutdown, retention

    async def ping(self, size: int = 0) -> None:
        value = ready_check_value(size)
        await self._write(
            lambda conn: conn.execute(
                "INSERT INTO settings (name, value) VALUES ('ready_check', $1) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                value,
            )
        )

    async def flush(self) -> None:
        # The queue is FIFO and completions are reported in order: once this no-op is
        # settled, everything submitted before it has been committed and reported.
        await self._write(_nothing)

    async def trim(self, channel_id: int, upto_seq: int, batch: int) -> tuple[int, int]:
        async def trim(conn: Conn) -> tuple[int, int]:
            end = await conn.fetchval(
                "SELECT seq FROM messages WHERE channel_id = $1 AND seq <= $2 "
                "ORDER BY seq LIMIT 1 OFFSET $3",
                channel_id,
                upto_seq,
                batch - 1,
            )
            end = upto_seq if end is None else end
            status = await conn.execute(
                "DELETE FROM messages WHERE channel_id = $1 AND seq <= $2", channel_id, end
            )
            await conn.execute(
                "DELETE FROM versions WHERE channel_id = $1 AND seq <= $2", channel_id, end
            )
            await conn.execute(
                "INSERT INTO trimmed (channel_id, trimmed_seq) VALUES ($1, $2) "
                "ON CONFLICT (channel_id) "
                "DO UPDATE SET trimmed_seq = greatest(trimmed.trimmed_seq, excluded.trimmed_seq)",
                channel_id,
                end,
            )
            return int(status.rpartition(" ")[2]), end

        result: tuple[int, int] = await self._pooled(trim)
        return result

    # Reads

    async def parked_ephemeral(self, row_id: int) -> list[dict[str, Any]] | None:
        """Ephemeral messages another node parked for its notification; None once dropped."""
        body = await self.pool.fetchval("SELECT body FROM ephemeral WHERE id = $1", row_id)
        if body is None:
            return None
        messages: list[dict[str, Any]] = msgpack.unpackb(body, raw=False)
        return messages

    async def last_presence_seq(self, channel_id: int) -> int:
        """The channel's last presence seq as committed (by any node)."""
        row = await self._fetchone(
            "SELECT last_presence_seq FROM channels WHERE id = ?", (channel_id,)
        )
        return 0 if row is None else int(row[0])

    async def idempotent_seqs(self, channel_id: int, ids: Sequence[str]) -> dict[str, int]:
        if not ids:
            return {}
        rows = await self._fetchall(
            "SELECT message_id, seq FROM idempotency WHERE channel_id = ? "
            "AND message_id = ANY(?::text[])",
            (channel_id, list(ids)),
        )
        return {mid: seq for mid, seq in rows}

    async def _fetchone(self, sql: str, params: Sequence[Any]) -> Any:
        assert self._pool is not None
        return await self._pool.fetchrow(_numbered(sql), *params)

    async def _fetchall(self, sql: str, params: Sequence[Any]) -> list[Any]:
        assert self._pool is not None
        return list(await self._pool.fetch(_numbered(sql), *params))

    async def _execute(self, sql: str, params: Sequence[Any]) -> None:
        assert self._pool is not None
        await self._pool.execute(_numbered(sql), *params)

    async def _pooled(self, fn: Callable[[Conn], Awaitable[Any]]) -> Any:
        """`fn` in a transaction of its own on a pooled connection (writes off the log)."""
        assert self._pool is not None
        async with self._pool.acquire() as conn, conn.transaction():
            return await fn(conn)

    # The writer task

    async def _run_writer(self) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            ops: list[_Op] = []
            stop = False
            while self._queue and len(ops) < _MAX_OPS_PER_COMMIT:
                op = self._queue.popleft()
                if op is None:
                    stop = True
                    break
                ops.append(op)
            if ops:
                started = time.perf_counter()
                try:
                    outcomes = await self._commit(ops)
                except Exception as exc:
                    # Supervision: whatever broke, the batch is failed, never left waiting.
                    log.exception("store writer failed; failing the batch and reconnecting")
                    await self._drop_writer()
                    outcomes = [(None, exc)] * len(ops)
                report_commit(self.on_commit, len(ops), time.perf_counter() - started)
                self.health.record(ops, outcomes)
                if self.health.failure is None:
                    self._outage.succeeded()
                complete(ops, outcomes, self.completions)
            if stop:
                return

    async def _writer_connection(self) -> Conn:
        if self._writer is None or self._writer.is_closed():
            self._writer = await self.connect()
        return self._writer

    async def _drop_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.terminate()

    async def _commit(self, ops: list[_Op]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for publishing, run in itertools.groupby(ops, key=lambda op: isinstance(op, Publish)):
            commit = self._publish if publishing else self._transaction
            outcomes.extend(await self._commit_run(commit, list(run)))
        return outcomes

    async def _commit_run(
        self, commit: Callable[[Conn, list[Any]], Awaitable[list[Outcome]]], ops: list[_Op]
    ) -> list[Outcome]:
        """`ops` committed together by `commit`; if that fails, one by one, so that only a
        faulty operation fails."""
        try:
            conn = await self._writer_connection()
        except (*ENGINE_AWAY, asyncpg.PostgresError) as exc:
            # The server down or refusing: expected until it is back, so said once, not as a
            # traceback per batch.
            self._outage.failed(exc)
            return [(None, exc)] * len(ops)
        try:
            return await commit(conn, ops)
        except Exception as exc:
            if conn.is_closed() or isinstance(exc, OSError | asyncpg.InterfaceError):
                # The connection went with the commit: its outcome is unknown, so nothing of
                # it may be ACKed. The next batch gets a new connection.
                log.warning("store connection lost during a commit: %s", exc)
                await self._drop_writer()
                return [(None, exc)] * len(ops)
            if len(ops) == 1:
                log.warning("store commit failed: %s", exc)
                return [(None, exc)]
            log.warning(
                "group commit of %d operations failed (%s); retrying one by one", len(ops), exc
            )
        outcomes: list[Outcome] = []
        for op in ops:
            try:
                outcomes.extend(await commit(conn, [op]))
            except Exception as exc:
                log.warning("store commit of one operation failed: %s", exc)
                outcomes.append((None, exc))
                if conn.is_closed():
                    await self._drop_writer()
                    conn = await self._writer_connection()
        return outcomes

    async def _publish(self, conn: Conn, ops: list[Publish]) -> list[Outcome]:
        """Publishes in one call of `relay_publish`: one statement, its own transaction."""
        cids: list[int] = []
        mids: list[str | None] = []
        stamps: list[int] = []
        bodies: list[bytes] = []
        ephemeral_cids: list[int] = []
        ephemeral_bodies: list[bytes] = []
        for op in ops:
            cid = op.channel_id
            # The serial with seq 0: relay_publish writes the seq's digits over the zeros.
            unnumbered = format_serial(op.epoch, 0)
            for message, mid in zip(op.messages, op.idempotent_ids, strict=True):
                cids.append(cid)
                mids.append(mid)
                stamps.append(message["timestamp"])
                bodies.append(pack(_serial_last(message, unnumbered)))
            if op.ephemeral:
                ephemeral_cids.append(cid)
                ephemeral_bodies.append(pack(list(op.ephemeral)))
        if not cids and not ephemeral_cids:
            return [(PublishResult([], []), None) for _ in ops]
        try:
            seqs, fresh = await conn.fetchrow(
                "SELECT * FROM relay_publish($1, $2, $3, $4, $5, $6, $7, $8)",
                self.node_id,
                cids,
                mids,
                stamps,
                bodies,
                ephemeral_cids,
                ephemeral_bodies,
                int(time.time() * 1000),
            )
        except asyncpg.NoDataFoundError as exc:
            raise LookupError(str(exc)) from exc
        outcomes: list[Outcome] = []
        start = 0
        for op in ops:
            end = start + len(op.messages)
            outcomes.append((PublishResult(seqs[start:end], fresh[start:end]), None))
            start = end
        return outcomes

    async def _transaction(self, conn: Conn, ops: list[_Op]) -> list[Outcome]:
        async with conn.transaction():
            writes = _Writes(conn, self.node_id)
            await writes.lock(ops)
            outcomes = [await writes.apply(op) for op in ops]
            await writes.finish()
        return outcomes


async def _nothing(conn: Conn) -> None:
    return None


async def _upsert_keys(conn: Conn, keys: Sequence[ApiKey]) -> None:
    await conn.executemany(
        "INSERT INTO keys (key_name, app_id, secret, capability) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (key_name) DO UPDATE SET app_id = excluded.app_id, "
        "secret = excluded.secret, capability = excluded.capability",
        [(k.name, k.app_id, k.secret, k.capability.to_json()) for k in keys],
    )


class _Writes:
    """The writes of one transaction (all but publishes), gathered and sent as one statement
    per kind of row.

    `lock` takes the rows of every channel the batch writes (FOR UPDATE, in id order); from
    then on this transaction is the only writer of those channels, so numbering and aggregates
    computed here are what commits."""

    def __init__(self, conn: Conn, node_id: str) -> None:
        self.conn = conn
        self.node_id = node_id
        self.last_seqs: dict[int, int] = {}
        self.first_seqs: dict[int, int] = {}
        self.names: dict[int, tuple[str, str]] = {}
        self.presence_seqs: dict[int, int] = {}
        # Channels this transaction added presence events to (their notification names them).
        self.presence_written: set[int] = set()
        self.versions: list[tuple[int, int, int, bytes]] = []
        self.aggregates: dict[tuple[int, int], dict[str, Any]] = {}
        self.presence: list[tuple[int, int, str, int, bytes]] = []
        # Present members after this transaction: (channel, member key) -> the event, or None
        # for a leave.
        self.members: dict[tuple[int, str], dict[str, Any] | None] = {}

    async def lock(self, ops: list[_Op]) -> None:
        channel_ids = sorted(
            {op.channel_id for op in ops if isinstance(op, Mutate | PresenceEvents)}
        )
        if not channel_ids:
            return
        rows = await self.conn.fetch(
            "SELECT id, last_seq, last_presence_seq, app_id, name FROM channels "
            "WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE",
            channel_ids,
        )
        for cid, last_seq, last_presence, app_id, name in rows:
            self.last_seqs[cid] = last_seq
            self.presence_seqs[cid] = last_presence
            self.names[cid] = (app_id, name)

    async def apply(self, op: _Op) -> Outcome:
        if isinstance(op, Mutate):
            try:
                return await self.mutate(op), None
            except AblyError as refused:  # raised before anything is written
                return None, refused
        if isinstance(op, PresenceEvents):
            self.add_presence(op)
            return None, None
        try:
            async with self.conn.transaction():
                return await op.fn(self.conn), None
        except Exception as exc:
            return None, exc

    def take_seq(self, channel_id: int) -> int:
        last = self.last_seqs.get(channel_id)
        if last is None:
            raise LookupError(f"channel {channel_id} is not in the store")
        seq = self.last_seqs[channel_id] = last + 1
        self.first_seqs.setdefault(channel_id, seq)
        return seq

    async def mutate(self, op: Mutate) -> MutateResult:
        cid, target = op.channel_id, op.target_seq
        current = self.aggregates.get((cid, target))
        if current is None:
            body = await self.conn.fetchval(
                "SELECT body FROM messages WHERE channel_id = $1 AND seq = $2", cid, target
            )
            current = None if body is None else unpack(body)
        if current is None:
            raise AblyError.not_found(f"No message with serial {format_serial(op.epoch, target)!r}")
        if cid not in self.last_seqs:
            raise LookupError(f"channel {cid} is not in the store")
        seq = self.last_seqs[cid] + 1
        aggregate, operation = op.apply(current, format_serial(op.epoch, seq))
        self.take_seq(cid)
        if "version" not in current:
            # The message as first published, kept as its first version once it changes.
            self.versions.append((cid, target, target, pack(current)))
        self.versions.append((cid, seq, target, pack(operation)))
        self.aggregates[(cid, target)] = aggregate
        return MutateResult(seq, target, aggregate, operation)

    def add_presence(self, op: PresenceEvents) -> None:
        cid = op.channel_id
        last = self.presence_seqs.get(cid)
        if last is None:
            raise LookupError(f"channel {cid} is not in the store")
        for event in op.events:
            last += 1
            self.presence.append(
                (cid, last, event["connectionId"], event["timestamp"], pack(event))
            )
            member = f"{event['clientId']}:{event['connectionId']}"
            leaves = event["action"] == PresenceAction.LEAVE
            self.members[(cid, member)] = None if leaves else event
        self.presence_seqs[cid] = last
        self.presence_written.add(cid)

    async def finish(self) -> None:
        conn = self.conn
        if self.versions:
            await conn.execute(
                "INSERT INTO versions (channel_id, seq, target_seq, body) "
                "SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bytea[]) "
                "ON CONFLICT DO NOTHING",
                *map(list, zip(*self.versions, strict=True)),
            )
        if self.aggregates:
            keys = list(self.aggregates)
            await conn.execute(
                "UPDATE messages m SET body = a.body "
                "FROM unnest($1::bigint[], $2::bigint[], $3::bytea[]) AS a(cid, seq, body) "
                "WHERE m.channel_id = a.cid AND m.seq = a.seq",
                [cid for cid, _ in keys],
                [seq for _, seq in keys],
                [pack(self.aggregates[k]) for k in keys],
            )
        if self.presence:
            await conn.execute(
                "INSERT INTO presence (channel_id, seq, connection_id, timestamp, body) "
                "SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], "
                "$5::bytea[])",
                *map(list, zip(*self.presence, strict=True)),
            )
        if self.members:
            await self.write_members()
        if self.last_seqs:
            ids = list(self.last_seqs)
            await conn.execute(
                "UPDATE channels c SET last_seq = v.last, last_presence_seq = v.presence "
                "FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS v(id, last, presence) "
                "WHERE c.id = v.id",
                ids,
                [self.last_seqs[cid] for cid in ids],
                [self.presence_seqs[cid] for cid in ids],
            )
        kinds, entries = self.notifications()
        if entries:
            await conn.execute("SELECT relay_notify($1, $2, $3)", self.node_id, kinds, entries)

    async def write_members(self) -> None:
        left = [key for key, event in self.members.items() if event is None]
        present = [(key, event) for key, event in self.members.items() if event is not None]
        if left:
            await self.conn.execute(
                "DELETE FROM presence_members m USING unnest($1::bigint[], $2::text[]) "
                "AS l(cid, key) WHERE m.channel_id = l.cid AND m.member_key = l.key",
                [cid for cid, _ in left],
                [key for _, key in left],
            )
        if present:
            await self.conn.execute(
                "INSERT INTO presence_members (channel_id, member_key, connection_id, node_id, "
                "body) SELECT p.cid, p.key, p.conn, $4, p.body "
                "FROM unnest($1::bigint[], $2::text[], $3::text[], $5::bytea[]) "
                "AS p(cid, key, conn, body) "
                "ON CONFLICT (channel_id, member_key) DO UPDATE SET "
                "connection_id = excluded.connection_id, node_id = excluded.node_id, "
                "body = excluded.body",
                [cid for (cid, _), _ in present],
                [key for (_, key), _ in present],
                [event["connectionId"] for _, event in present],
                self.node_id,
                [pack(event) for _, event in present],
            )

    def notifications(self) -> tuple[list[str], list[str]]:
        """The commit's notification entries for relay_notify, grouped by kind: per channel
        written, its app, name and the seq range taken; per channel with new presence events,
        its last presence seq (other nodes read up to it)."""
        kinds: list[str] = []
        entries: list[str] = []
        for cid, first in self.first_seqs.items():
            app_id, name = self.names[cid]
            kinds.append("ranges")
            entries.append(json.dumps([cid, first, self.last_seqs[cid], app_id, name]))
        for cid in sorted(self.presence_written):
            kinds.append("presence")
            entries.append(json.dumps([cid, self.presence_seqs[cid], *self.names[cid]]))
        return kinds, entries


def location(url: str) -> str:
    """The server and database `url` names, for people to read (no user or password)."""
    parts = urlsplit(url)
    return f"PostgreSQL at {parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"


def _unreachable(url: str, exc: BaseException) -> str:
    """Why PostgreSQL at `url` cannot serve, in one line naming it."""
    where = location(url)
    if isinstance(exc, TimeoutError):
        return f"{where}: no answer within {_CONNECT_TIMEOUT:g} s"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{where}: {exc.strerror}"
    return f"{where}: {exc}"


def _serial_last(message: dict[str, Any], serial: str) -> dict[str, Any]:
    """The message as stored, its serial the last entry (where relay_publish finds it)."""
    if "serial" not in message:
        return {**message, "serial": serial}
    body = {key: value for key, value in message.items() if key != "serial"}
    body["serial"] = serial
    return body
