"""The reads both stores make the same way: SQL with `?` placeholders that each store runs on
its own connection (`_fetchone`, `_fetchall`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from channel_relay.auth.capability import Capability
from channel_relay.auth.keys import ApiKey
from channel_relay.auth.revocation import Revocation
from channel_relay.store.base import (
    ChannelLog,
    HistoryQuery,
    LogEvent,
    StoredMessage,
    StoredVersion,
)
from channel_relay.store.rows import page_clause, unpack

__all__ = ["LogReads"]


class LogReads(ABC):
    @abstractmethod
    async def _fetchone(self, sql: str, params: Sequence[Any]) -> Any:
        """The first row of `sql`, or None."""

    @abstractmethod
    async def _fetchall(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """Every row of `sql`."""

    async def revocations(self, after_id: int) -> list[tuple[int, Revocation]]:
        rows = await self._fetchall(
            "SELECT id, key_name, kind, value, issued_before, applies_at FROM revocations "
            "WHERE id > ? ORDER BY id",
            (after_id,),
        )
        return [(row[0], Revocation(*row[1:])) for row in rows]

    async def channel_list(self) -> list[tuple[int, str, str]]:
        rows = await self._fetchall("SELECT id, app_id, name FROM channels ORDER BY id", ())
        return [(cid, app_id, name) for cid, app_id, name in rows]

    async def retention_cutoff(
        self, channel_id: int, before_ms: int | None, keep: int | None
    ) -> int:
        cutoff = 0
        if before_ms is not None:
            cutoff = await self._last_before(channel_id, before_ms)
        if keep is not None:
            row = await self._fetchone(
                "SELECT seq FROM messages WHERE channel_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?",
                (channel_id, keep),
            )
            cutoff = max(cutoff, row[0] if row else 0)
        return cutoff

    async def _last_before(self, channel_id: int, before_ms: int) -> int:
        """The last seq of the channel's messages stamped before `before_ms` (0: none)."""
        # Timestamps never decrease along seq, so the (channel_id, timestamp) index finds it.
        row = await self._fetchone(
            "SELECT seq FROM messages WHERE channel_id = ? AND timestamp < ? "
            "ORDER BY timestamp DESC, seq DESC LIMIT 1",
            (channel_id, before_ms),
        )
        return row[0] if row else 0

    async def apps(self) -> list[tuple[str, str]]:
        return [(a, s) for a, s in await self._fetchall("SELECT app_id, spec FROM apps", ())]

    async def stats(self, app_id: str, start: int, end: int) -> list[tuple[int, str]]:
        rows = await self._fetchall(
            "SELECT interval_start, entries FROM stats WHERE app_id = ? "
            "AND interval_start >= ? AND interval_start <= ? ORDER BY interval_start",
            (app_id, start, end),
        )
        return [(start_, entries) for start_, entries in rows]

    async def get_setting(self, name: str) -> str | None:
        row = await self._fetchone("SELECT value FROM settings WHERE name = ?", (name,))
        return None if row is None else row[0]

    async def keys(self) -> list[ApiKey]:
        rows = await self._fetchall("SELECT key_name, secret, capability FROM keys", ())
        keys = []
        for key_name, secret, capability in rows:
            app_id, _, key_id = key_name.partition(".")
            keys.append(ApiKey(app_id, key_id, secret, Capability.parse(capability)))
        return keys

    async def history(self, query: HistoryQuery) -> list[StoredMessage]:
        where, params = page_clause(query, with_time=True)
        rows = await self._fetchall(
            f"SELECT seq, body FROM messages WHERE channel_id = ? {where}", params
        )
        return [StoredMessage(seq, unpack(body)) for seq, body in rows]

    async def presence_history(self, query: HistoryQuery) -> list[StoredMessage]:
        where, params = page_clause(query, with_time=True)
        rows = await self._fetchall(
            f"SELECT seq, body FROM presence WHERE channel_id = ? {where}", params
        )
        return [StoredMessage(seq, unpack(body)) for seq, body in rows]

    async def last_presence(self, channel_id: int, connection_id: str) -> dict[str, Any] | None:
        row = await self._fetchone(
            "SELECT body FROM presence WHERE channel_id = ? AND connection_id = ? "
            "ORDER BY seq DESC LIMIT 1",
            (channel_id, connection_id),
        )
        return None if row is None else unpack(row[0])

    async def message(self, channel_id: int, seq: int) -> dict[str, Any] | None:
        row = await self._fetchone(
            "SELECT body FROM messages WHERE channel_id = ? AND seq = ?", (channel_id, seq)
        )
        return None if row is None else unpack(row[0])

    async def versions(
        self, channel_id: int, target_seq: int, query: HistoryQuery
    ) -> list[StoredVersion]:
        where, params = page_clause(query, with_time=False)
        # From the message's own seq on: the scan of the channel's versions stops there.
        params[0:1] = [channel_id, target_seq, target_seq]
        rows = await self._fetchall(
            "SELECT seq, body FROM versions WHERE channel_id = ? AND seq >= ? AND target_seq = ? "
            f"{where}",
            params,
        )
        return [StoredVersion(seq, target_seq, unpack(body)) for seq, body in rows]

    async def events(
        self, channel_id: int, start_seq: int, after_seq: int, until_seq: int, limit: int
    ) -> list[LogEvent]:
        rows = await self._fetchall(
            "SELECT seq, seq, body FROM messages WHERE channel_id = ? AND seq > ? AND seq <= ? "
            "UNION ALL "
            "SELECT seq, target_seq, body FROM versions WHERE channel_id = ? AND seq > ? "
            "AND seq <= ? AND target_seq <= ? AND seq != target_seq "
            "ORDER BY 1 LIMIT ?",
            (channel_id, after_seq, until_seq, channel_id, after_seq, until_seq, start_seq, limit),
        )
        return [LogEvent(seq, target, unpack(body)) for seq, target, body in rows]

    async def channel_names(
        self, app_id: str, prefix: str, after: str | None, limit: int
    ) -> list[str]:
        # The (app_id, name) unique index serves the range; names compare as code points
        # (SQLite's BINARY collation of UTF-8, PostgreSQL's "C").
        lower, op = (after, ">") if after is not None and after >= prefix else (prefix, ">=")
        rows = await self._fetchall(
            f"SELECT name FROM channels WHERE app_id = ? AND name {op} ? "
            "AND substr(name, 1, ?) = ? ORDER BY name LIMIT ?",
            (app_id, lower, len(prefix), prefix, limit),
        )
        return [name for (name,) in rows]

    async def find_channel(self, app_id: str, name: str) -> ChannelLog | None:
        row = await self._fetchone(
            "SELECT id, epoch, last_seq FROM channels WHERE app_id = ? AND name = ?",
            (app_id, name),
        )
        return None if row is None else await self._channel_log(row)

    async def _channel_log(self, row: tuple[int, str, int]) -> ChannelLog:
        trimmed = await self._fetchone(
            "SELECT trimmed_seq FROM trimmed WHERE channel_id = ?", (row[0],)
        )
        lost = await self._fetchall(
            "SELECT after_seq, upto_seq FROM restored WHERE channel_id = ?", (row[0],)
        )
        return ChannelLog(
            channel_id=row[0],
            epoch=row[1],
            last_seq=row[2],
            first_seq=(trimmed[0] + 1) if trimmed else 1,
            lost=tuple((after, upto) for after, upto in lost),
        )

    async def version_rows(
        self, channel_id: int, after_seq: int, limit: int
    ) -> list[StoredVersion]:
        rows = await self._fetchall(
            "SELECT seq, target_seq, body FROM versions WHERE channel_id = ? AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (channel_id, after_seq, limit),
        )
        return [StoredVersion(seq, target, unpack(body)) for seq, target, body in rows]

    async def presence_members(self, channel_id: int) -> list[tuple[str, dict[str, Any]]]:
        rows = await self._fetchall(
            "SELECT node_id, body FROM presence_members WHERE channel_id = ?", (channel_id,)
        )
        return [(node_id, unpack(body)) for node_id, body in rows]

    async def log_since(self, channel_id: int, after_seq: int, limit: int) -> list[LogEvent]:
        """The log after `after_seq` as it was delivered live: each message as first published
        (its version row when it has changed since) and each change as its operation."""
        rows = await self._fetchall(
            "SELECT m.seq, m.seq, coalesce(v.body, m.body) FROM messages m "
            "LEFT JOIN versions v ON v.channel_id = m.channel_id AND v.seq = m.seq "
            "WHERE m.channel_id = ? AND m.seq > ? "
            "UNION ALL "
            "SELECT seq, target_seq, body FROM versions WHERE channel_id = ? AND seq > ? "
            "AND seq != target_seq "
            "ORDER BY 1 LIMIT ?",
            (channel_id, after_seq, channel_id, after_seq, limit),
        )
        return [LogEvent(seq, target, unpack(body)) for seq, target, body in rows]

    async def last_seq(self, channel_id: int) -> int:
        row = await self._fetchone("SELECT last_seq FROM channels WHERE id = ?", (channel_id,))
        return 0 if row is None else int(row[0])
