"""Scenario 4, history: the newest page of 100 from a channel of 1,000,000 messages (10,000 with
--quick) through REST (`GET /channels/{name}/messages?limit=100`, Basic auth), p50/p99 over
sequential requests. Ceilings: the same GET against a bare aiohttp handler answering a prebuilt
page, and the bare SQLite query of that page. The seeded relay database is cached in
bench/results/cache (keyed by the store's source), copied before each run.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

from ..context import Context, Row, Unavailable
from ..servers import ServerProcess
from .durable import sqlite_ceiling

__all__ = ["NAME", "run"]

NAME = "history"
CHANNEL = "history-big"


def _store_fingerprint(ctx: Context) -> str:
    digest = hashlib.sha256()
    for path in sorted((ctx.relay_src / "relay" / "store").glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _copy_db(src: Path, dst: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{src}{suffix}").exists():
            shutil.copyfile(f"{src}{suffix}", f"{dst}{suffix}")


def _seeded_db(ctx: Context) -> tuple[Path, dict[str, Any]]:
    n = ctx.sizes.history_messages
    cached = ctx.cache_dir / f"relay-history-{n}-{_store_fingerprint(ctx)}.db"
    if cached.exists():
        return cached, {"cached": True}
    fresh = ctx.workdir / "seed.db"
    with ctx.relay(fresh) as server, ctx.workers() as handles:
        params = {
            "endpoint": ctx.endpoint(server),
            "channel": CHANNEL,
            "messages": n,
            "batch": 500,
            "window": 16,
        }
        seed = ctx.spawn_into(handles, "bench.load.history:seed", params, "seed")
        res = seed.recv(900)
    if not res["done"]:
        raise Unavailable(f"seeding failed: {res}")
    ctx.log(f"  seeded {n} messages in {res['elapsed']:.1f} s ({n / res['elapsed']:.0f}/s)")
    for old in ctx.cache_dir.glob(f"relay-history-{n}-*.db*"):
        old.unlink()
    _copy_db(fresh, cached)
    return cached, {"cached": False, "seed_rate": n / res["elapsed"], **res}


def _pages(ctx: Context, server: ServerProcess, path: str, key: str | None) -> dict[str, Any]:
    params = {
        "url": f"http://127.0.0.1:{server.port}{path}",
        "key": key,
        "requests": ctx.sizes.history_requests,
        "newest": ctx.sizes.history_messages - 1 if key else None,
    }
    with ctx.workers() as handles:
        worker = ctx.spawn_into(handles, "bench.load.history:pages", params, "pages")
        return worker.recv(300)


def run(ctx: Context) -> list[Row]:
    n = ctx.sizes.history_messages
    with ctx.ceiling() as server:
        ceiling = _pages(ctx, server, "/page", None)
    sqlite = sqlite_ceiling(ctx, history_messages=n)["history_page"]
    relay: dict[str, Any] | None = None
    seed_info: dict[str, Any] = {}
    note = ""
    try:
        cached, seed_info = _seeded_db(ctx)
        db = ctx.workdir / "history.db"
        _copy_db(cached, db)
        with ctx.relay(db) as server:
            relay = _pages(ctx, server, f"/channels/{CHANNEL}/messages?limit=100", server_key(ctx))
    except Unavailable as exc:
        note = str(exc)
    ctx.details[NAME] = {
        "ceiling_http": ceiling,
        "ceiling_sqlite": sqlite,
        "relay": relay,
        "seed": seed_info,
    }
    checks = ""
    if relay:
        checks = "ok" if not relay["problems"] else "; ".join(relay["problems"][:2])
    case = f"page of 100 from {n:,} messages"
    rows = []
    for label, key in (("p99", "p99_ms"), ("p50", "p50_ms")):
        row = Row(
            NAME,
            case,
            f"{label} REST page",
            "ms",
            relay and relay["latency"][key],
            ceiling["latency"][key],
            "bare aiohttp GET of a prebuilt page",
            checks=checks,
            note=note,
        )
        if label == "p99":
            row.target = "<= 5 ms"
            row.met = None if row.relay is None else row.relay <= 5.0
            row.note = (
                note or f"bare SQLite page query p50/p99 {sqlite['p50_ms']}/{sqlite['p99_ms']} ms"
            )
        rows.append(row)
    return rows


def server_key(ctx: Context) -> str:
    from ..servers import BENCH_KEY

    return BENCH_KEY
