"""Tables kept beside the message log, for state written rarely or off the publish path (push
registrations, annotations, live stats): the interface their stores are written against, and
its SQLite implementation.

On SQLite they are in the log's file, through a connection of their own: WAL and a busy timeout
let it take turns with the log's group-commit writer, and a thread of its own keeps SQLite off
the event loop. On PostgreSQL they are tables of the cluster's database
(channel_relay.store.pg_side), shared by every node.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

__all__ = ["SideDatabase", "SideTables", "Statement"]

_T = TypeVar("_T")

# SQL with `?` placeholders, written to run on both engines, and its parameters.
Statement = tuple[str, Sequence[Any]]


class SideTables(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def write(self, statements: Sequence[Statement]) -> int:
        """Run `statements` in one transaction; the number of rows they changed."""

    async def read(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]: ...


class SideDatabase:
    """One connection to the SQLite database at `path`, with `schema` applied at open."""

    def __init__(self, path: str, schema: str, name: str) -> None:
        self.path = path
        self._schema = schema
        self._db: sqlite3.Connection | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def open(self) -> None:
        await self._run(self._open)

    def _open(self) -> None:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA busy_timeout = 10000")
        db.execute("PRAGMA synchronous = FULL")
        db.executescript(self._schema)
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._executor.shutdown(wait=True)

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def transaction(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run `fn` in one write transaction (committed, or rolled back if it raises)."""

        def write() -> _T:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
            try:
                result = fn(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result

        return await self._run(write)

    async def write(self, statements: Sequence[Statement]) -> int:
        """Run `statements` in one transaction; the number of rows they changed."""

        def run(db: sqlite3.Connection) -> int:
            return sum(db.execute(sql, params).rowcount for sql, params in statements)

        return await self.transaction(run)

    async def read(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        return await self._run(lambda: list(self._conn().execute(sql, params).fetchall()))

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError(f"the database {self.path} is not open")
        return self._db
