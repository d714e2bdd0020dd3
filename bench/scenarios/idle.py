"""Scenario 6, idle connections: relay memory per connection with N idle realtime connections
(CONNECTED, nothing attached), from VmRSS in /proc/PID/status before and after. The ceiling is
the same count of idle WebSockets held by a bare aiohttp server. RLIMIT_NOFILE is raised in every
process.
"""

from __future__ import annotations

import time
from typing import Any

from ..context import Context, Row, Unavailable
from ..servers import ServerProcess

__all__ = ["NAME", "run"]

NAME = "idle"


def _measure(ctx: Context, server: ServerProcess) -> dict[str, Any]:
    ep = ctx.endpoint(server)
    n = ctx.sizes.idle_connections
    with ctx.workers() as handles:
        warm = ctx.spawn_into(
            handles,
            "bench.load.subscribers:main",
            {"endpoint": ep, "channels": ["idle"] * 20, "attach": False},
            "warm",
        )
        warm.recv(60)
        warm.stop()
        time.sleep(1.0)
        rss0 = server.rss_kib()
        params = {"endpoint": ep, "channels": ["idle"] * n, "attach": False, "concurrency": 200}
        conns = ctx.spawn_into(handles, "bench.load.subscribers:main", params, "idle")
        ready = conns.recv(300)
        time.sleep(2.0)
        rss1 = server.rss_kib()
        alive = server.alive()
    if ready["ready"] < n:
        raise Unavailable(f"only {ready['ready']}/{n} connections opened: {ready['errors']}")
    return {
        "connections": ready["ready"],
        "rss_before_kib": rss0,
        "rss_after_kib": rss1,
        "kib_per_connection": (rss1 - rss0) / max(1, ready["ready"]),
        "alive": alive,
    }


def run(ctx: Context) -> list[Row]:
    with ctx.ceiling() as server:
        ceiling = _measure(ctx, server)
    relay: dict[str, Any] | None = None
    note = ""
    try:
        with ctx.relay() as server:
            relay = _measure(ctx, server)
    except Unavailable as exc:
        note = str(exc)
    ctx.details[NAME] = {"ceiling": ceiling, "relay": relay}
    n = ctx.sizes.idle_connections
    row = Row(
        NAME,
        f"{n:,} idle connections",
        "relay memory per connection",
        "KiB",
        relay and relay["kib_per_connection"],
        ceiling["kib_per_connection"],
        "bare aiohttp idle WebSockets",
        "<= 16 KiB",
        note=note,
    )
    row.met = None if row.relay is None else row.relay <= 16
    if relay and not note:
        row.note = (
            f"relay RSS {relay['rss_before_kib'] / 1024:.0f} -> "
            f"{relay['rss_after_kib'] / 1024:.0f} MiB"
        )
    return [row]
