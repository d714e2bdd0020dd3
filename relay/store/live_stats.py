"""Where live stats (channel_relay.usage) are kept: per app and minute, the entries every flush
adds to. Entries named `*.peak` keep the largest value seen; all others are sums.

One interface, two engines: `SqliteLiveStats` keeps a minute as one row of JSON in the relay's
SQLite file (one writer); `PgLiveStats` keeps one row per entry in the cluster's database, so
each node adds its counts with one upsert (`value = value + excluded.value`) and every node
reads the cluster's totals.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Protocol

import asyncpg

from channel_relay.store.pg_side import PgSideTables
from channel_relay.store.side import SideDatabase

__all__ = ["LiveStatsTable", "Minutes", "PgLiveStats", "SqliteLiveStats", "merge_entries"]

Minutes = Mapping[tuple[str, int], Mapping[str, float]]
"""Entries per (app, minute start in ms)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS live_stats (
    app_id TEXT NOT NULL,
    interval_start INTEGER NOT NULL,
    entries TEXT NOT NULL,
    PRIMARY KEY (app_id, interval_start)
) WITHOUT ROWID;
"""


def merge_entries(into: dict[str, float], entries: Mapping[str, float]) -> None:
    for name, value in entries.items():
        if name.endswith(".peak"):
            into[name] = max(into.get(name, 0), value)
        else:
            into[name] = into.get(name, 0) + value


class LiveStatsTable(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def add(self, minutes: Minutes) -> None:
        """Add these counts to what is kept, in one transaction (nothing of them if it raises)."""

    async def read(self, app_id: str, start: int, end: int) -> dict[int, dict[str, float]]:
        """The app's minutes starting within [start, end]."""

    async def delete_app(self, app_id: str) -> None: ...


class SqliteLiveStats:
    def __init__(self, path: str) -> None:
        self._db = SideDatabase(path, _SCHEMA, "relay-stats")

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    async def add(self, minutes: Minutes) -> None:
        def add(db: sqlite3.Connection) -> None:
            for (app_id, start), entries in minutes.items():
                row = db.execute(
                    "SELECT entries FROM live_stats WHERE app_id = ? AND interval_start = ?",
                    (app_id, start),
                ).fetchone()
                merged: dict[str, float] = json.loads(row[0]) if row else {}
                merge_entries(merged, entries)
                db.execute(
                    "INSERT OR REPLACE INTO live_stats (app_id, interval_start, entries) "
                    "VALUES (?, ?, ?)",
                    (app_id, start, json.dumps(merged)),
                )

        await self._db.transaction(add)

    async def read(self, app_id: str, start: int, end: int) -> dict[int, dict[str, float]]:
        rows = await self._db.read(
            "SELECT interval_start, entries FROM live_stats WHERE app_id = ? "
            "AND interval_start >= ? AND interval_start <= ?",
            (app_id, start, end),
        )
        return {row[0]: json.loads(row[1]) for row in rows}

    async def delete_app(self, app_id: str) -> None:
        await self._db.write([("DELETE FROM live_stats WHERE app_id = ?", (app_id,))])


class PgLiveStats:
    def __init__(self, tables: PgSideTables) -> None:
        self._db = tables

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    async def add(self, minutes: Minutes) -> None:
        rows = [
            (app_id, start, name, float(value))
            for (app_id, start), entries in minutes.items()
            for name, value in entries.items()
        ]
        if not rows:
            return

        async def add(conn: asyncpg.Connection) -> None:
            # Rows in key order: two nodes flushing at once never deadlock on each other's.
            rows.sort()
            await conn.execute(
                "INSERT INTO live_stats (app_id, interval_start, name, value) "
                "SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::float8[]) "
                "ON CONFLICT (app_id, interval_start, name) DO UPDATE SET value = CASE "
                "WHEN excluded.name LIKE '%.peak' THEN greatest(live_stats.value, excluded.value) "
                "ELSE live_stats.value + excluded.value END",
                *map(list, zip(*rows, strict=True)),
            )

        await self._db.transaction(add)

    async def read(self, app_id: str, start: int, end: int) -> dict[int, dict[str, float]]:
        rows = await self._db.read(
            "SELECT interval_start, name, value FROM live_stats WHERE app_id = ? "
            "AND interval_start >= ? AND interval_start <= ?",
            (app_id, start, end),
        )
        out: dict[int, dict[str, float]] = {}
        for minute, name, value in rows:
            # Counts come back as the integers they were.
            out.setdefault(minute, {})[name] = int(value) if value.is_integer() else value
        return out

    async def delete_app(self, app_id: str) -> None:
        await self._db.write([("DELETE FROM live_stats WHERE app_id = ?", (app_id,))])
