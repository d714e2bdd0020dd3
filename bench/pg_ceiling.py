"""The bare PostgreSQL group-commit writer: the ceiling of the relay's durable path on PostgreSQL.

Runs as a worker process pinned to the server core. One asyncpg connection; every commit takes
ALL pending rows (`inflight` of them, as `publishers x window` publishers would keep waiting) in
one transaction: one `INSERT ... SELECT FROM unnest(...)` on the relay's `messages` shape and one
`pg_notify` naming the channels written, as the relay's store does. A row is "ACKed" when its
commit returns and is replaced at once. Reported: rows/s, enqueue-to-commit p50/p99, and the
writer's own CPU per row (what a relay's CPU per publish is set against).
"""

from __future__ import annotations

import json
import time
from typing import Any

import asyncpg

from .stats import LatencyHistogram

__all__ = ["main"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ceiling_messages (
    channel_id BIGINT NOT NULL, seq BIGINT NOT NULL, timestamp BIGINT NOT NULL,
    body BYTEA NOT NULL, PRIMARY KEY (channel_id, seq)
)
"""
_INSERT = (
    "INSERT INTO ceiling_messages (channel_id, seq, timestamp, body) "
    "SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bytea[])"
)


async def group_commit(url: str, inflight: int, channels: int, seconds: float) -> dict[str, Any]:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(_SCHEMA)
        hist = LatencyHistogram()
        seqs = [0] * channels
        body = b"0 1700000000000000000 " + b"x" * 24
        committed = commits = k = 0
        start = time.monotonic()
        cpu = time.process_time()
        while time.monotonic() - start < seconds:
            enqueued = time.time_ns()
            cids, rows = [], []
            for _ in range(inflight):
                ch = k % channels
                k += 1
                seqs[ch] += 1
                cids.append(ch)
                rows.append(seqs[ch])
            payload = json.dumps({"c": sorted(set(cids))[:200]})
            async with conn.transaction():
                await conn.execute(
                    _INSERT, cids, rows, [1700000000000] * inflight, [body] * inflight
                )
                await conn.execute("SELECT pg_notify('bench_ceiling', $1)", payload)
            now = time.time_ns()
            for _ in range(inflight):
                hist.add_us((now - enqueued) // 1000)
            committed += inflight
            commits += 1
        elapsed = time.monotonic() - start
        cpu = time.process_time() - cpu
    finally:
        await conn.close()
    return {
        "inflight": inflight,
        "rows_per_s": committed / elapsed,
        "rows_per_commit": committed / max(1, commits),
        "cpu_us_per_row": cpu / max(1, committed) * 1e6,
        "commit": hist.summary(),
    }


async def main(params: dict[str, Any], inbox: Any) -> None:
    """Worker entry: params {url, inflight, channels, seconds}; replies once."""
    inbox.send(
        await group_commit(params["url"], params["inflight"], params["channels"], params["seconds"])
    )
