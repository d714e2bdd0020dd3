"""The bare SQLite WAL group-commit writer: the ceiling of every durable path.

Runs as a worker process pinned to the server core. One writer thread takes ALL pending rows,
writes them with one `executemany` in one transaction and commits; a producer keeps `inflight` rows
pending (a row is "ACKed" when its commit returns), as `publishers x window` publishers would.
Reported for synchronous=FULL and NORMAL: rows/s and enqueue-to-commit p50/p99. Also the history
page query (100 rows from a channel of N) on the relay's schema shape, a WITHOUT ROWID table keyed
(channel_id, seq).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from .stats import LatencyHistogram

__all__ = ["main"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    channel_id INTEGER NOT NULL, seq INTEGER NOT NULL, serial TEXT NOT NULL, name TEXT,
    data BLOB, timestamp INTEGER NOT NULL, PRIMARY KEY (channel_id, seq)
) WITHOUT ROWID
"""


def _open(path: Path, synchronous: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute(_SCHEMA)
    return db


def group_commit(
    path: Path, synchronous: str, inflight: int, channels: int, seconds: float
) -> dict:
    db = _open(path, synchronous)
    cond = threading.Condition()
    pending: list[tuple[int, list[tuple[Any, ...]]]] = []  # (enqueue ns, rows)
    state = {"inflight": 0, "committed": 0, "stop": False, "commits": 0}
    hist = LatencyHistogram()

    def writer() -> None:
        while True:
            with cond:
                while not pending and not state["stop"]:
                    cond.wait(0.1)
                if state["stop"] and not pending:
                    return
                batch = pending[:]
                pending.clear()
            rows = [row for _, chunk in batch for row in chunk]
            db.execute("BEGIN")
            db.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)", rows)
            db.execute("COMMIT")
            now = time.time_ns()
            for enqueued, chunk in batch:
                for _ in chunk:
                    hist.add_us((now - enqueued) // 1000)
            with cond:
                state["inflight"] -= len(rows)
                state["committed"] += len(rows)
                state["commits"] += 1
                cond.notify_all()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    seqs = [0] * channels
    data = b"0 1700000000000000000 " + b"x" * 24
    start = time.monotonic()
    k = 0
    while time.monotonic() - start < seconds:
        with cond:
            while state["inflight"] >= inflight:
                cond.wait(0.1)
            room = inflight - state["inflight"]
            chunk = []
            for _ in range(room):
                ch = k % channels
                k += 1
                seqs[ch] += 1
                chunk.append((ch, seqs[ch], f"{seqs[ch]:020d}", "m", data, 1700000000000))
            pending.append((time.time_ns(), chunk))
            state["inflight"] += len(chunk)
            cond.notify_all()
    elapsed = time.monotonic() - start
    committed = state["committed"]
    with cond:
        state["stop"] = True
        cond.notify_all()
    thread.join(30)
    db.close()
    return {
        "synchronous": synchronous,
        "inflight": inflight,
        "rows_per_s": committed / elapsed,
        "rows_per_commit": committed / max(1, state["commits"]),
        "commit": hist.summary(),
    }


def history_pages(path: Path, messages: int, requests: int) -> dict:
    """p50/p99 of reading the newest 100 rows of a channel of `messages` rows (seeded once)."""
    db = _open(path, "NORMAL")
    have = db.execute("SELECT count(*) FROM messages WHERE channel_id = 7").fetchone()[0]
    if have < messages:
        db.execute("DELETE FROM messages WHERE channel_id = 7")
        data = b"0 1700000000000000000 " + b"x" * 24
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO messages VALUES (7, ?, ?, 'm', ?, 1700000000000)",
            ((i, f"{i:020d}", data) for i in range(messages)),
        )
        db.execute("COMMIT")
    hist = LatencyHistogram()
    query = (
        "SELECT seq, serial, name, data, timestamp FROM messages WHERE channel_id = 7 "
        "ORDER BY seq DESC LIMIT 100"
    )
    for _ in range(requests):
        t0 = time.perf_counter_ns()
        rows = db.execute(query).fetchall()
        hist.add_us((time.perf_counter_ns() - t0) // 1000)
        assert len(rows) == 100
    db.close()
    return hist.summary()


def _remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def main(params: dict[str, Any], inbox: Any) -> None:
    """Worker entry: params {dir, inflight, channels, seconds, history_messages, history_requests,
    history_db}; replies once with every figure."""
    base = Path(params["dir"])
    out: dict[str, Any] = {"group_commit": []}
    for sync in ("FULL", "NORMAL"):
        for inflight in params["inflight"]:
            path = base / f"ceiling-{sync}-{inflight}.db"
            _remove_db(path)
            out["group_commit"].append(
                group_commit(path, sync, inflight, params["channels"], params["seconds"])
            )
    if params.get("history_messages"):
        out["history_page"] = history_pages(
            Path(params["history_db"]), params["history_messages"], params["history_requests"]
        )
    inbox.send(out)
