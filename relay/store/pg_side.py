"""The side tables (channel_relay.store.side) on PostgreSQL: push registrations, annotations and
live stats in the cluster's database, so every node reads and writes the same rows.

Written through the store's pool, one transaction per call, off the log's group-commit writer:
these writes are rare or batched, and the few that must be ordered across nodes lock what they
change inside their transaction (channel_relay.store.annotations). Their tables are in
channel_relay.store.pg_schema, made when the store opens.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg

from channel_relay.store.postgres import PostgresStore, _numbered
from channel_relay.store.side import Statement

__all__ = ["PgSideTables"]

_T = TypeVar("_T")


class PgSideTables:
    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    @property
    def node_id(self) -> str:
        return self.store.node_id

    async def open(self) -> None:
        """Nothing to do: the store made the tables when it opened."""

    async def close(self) -> None:
        """Nothing to do: the pool is the store's."""

    async def transaction(self, fn: Callable[[asyncpg.Connection], Awaitable[_T]]) -> _T:
        """`fn` in one transaction on a pooled connection (committed, or rolled back if it
        raises)."""
        async with self.store.pool.acquire() as conn, conn.transaction():
            return await fn(conn)

    async def write(self, statements: Sequence[Statement]) -> int:
        async def run(conn: asyncpg.Connection) -> int:
            changed = 0
            for sql, params in statements:
                status = await conn.execute(_numbered(sql), *params)
                changed += int(status.rpartition(" ")[2] or 0)
            return changed

        return await self.transaction(run)

    async def read(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        rows = await self.store.pool.fetch(_numbered(sql), *params)
        return [tuple(row) for row in rows]
