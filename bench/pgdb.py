"""A scratch PostgreSQL database per bench run: created with a random name, always dropped."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Iterator

import asyncpg

__all__ = ["PG_SERVER", "scratch_database"]

# Trust auth on the bench machine; BENCH_PG points elsewhere.
PG_SERVER = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432")


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(f"{PG_SERVER}/postgres", timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    """The URL of a new empty database, dropped (with any session still on it) on the way out."""
    name = f"relay_bench_{secrets.token_hex(6)}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
