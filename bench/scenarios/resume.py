"""Scenario 5, resume storm: N clients attached to one channel while a publisher streams; all drop
at the same instant and resume (resume=connectionKey, then ATTACH with their last channelSerial).
Reported: time from the drop until every client is caught up (has the backlog and a live message),
how many kept their connectionId and got RESUMED, and loss/duplicates/order over the whole stream.
The ceiling is the same storm against the bare broadcast server: reconnect and receive live (no
continuity, so no loss check there).
"""

from __future__ import annotations

import time
from typing import Any

from ..context import Context, Row, Unavailable, seq_checks
from ..servers import ServerProcess

__all__ = ["NAME", "run"]

NAME = "resume"


def _measure(ctx: Context, server: ServerProcess) -> dict[str, Any]:
    sizes = ctx.sizes
    ep = ctx.endpoint(server)
    n = sizes.storm_clients
    with ctx.workers() as handles:
        subs = ctx.spawn_into(
            handles,
            "bench.load.subscribers:main",
            {"endpoint": ep, "channels": ["storm"] * n},
            "subs",
        )
        ready = subs.recv(120)
        if ready["ready"] < n:
            raise Unavailable(f"only {ready['ready']}/{n} clients attached: {ready['errors']}")
        pub = ctx.spawn_into(
            handles, "bench.load.publishers:paced", {"endpoint": ep, "channel": "storm"}, "pub"
        )
        pub.recv(30)
        pub.send({"cmd": "run", "rate": sizes.storm_rate, "duration": None})
        time.sleep(1.0)
        storm = subs.request({"cmd": "storm", "timeout": 30.0}, 90)
        time.sleep(0.5)
        pub.send({"cmd": "stop"})
        res = pub.recv(60)
        st = subs.request({"cmd": "wait", "last": {"storm": res["last_seq"]}, "timeout": 15.0}, 60)
    return {"storm": storm, "published": res["sent"], "seq": st["seq"], "complete": st["complete"]}


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
    n = ctx.sizes.storm_clients
    case = f"{n} clients drop + resume, {ctx.sizes.storm_rate:.0f} msg/s"
    checks = ""
    if relay:
        storm = relay["storm"]
        checks = seq_checks(relay["seq"])
        if storm["same_connection"] < n:
            note = (
                f"resume not available: {storm['same_connection']}/{n} kept their connectionId "
                f"({storm['errors'][:2]})"
            )
        note = (note + "; " if note else "") + (
            f"RESUMED flag {storm['resumed_flag']}/{n}, failed {storm['failed']}, "
            f"caught up {storm['caught_up']}/{n}"
        )
    all_row = Row(
        NAME,
        case,
        "time until all caught up",
        "ms",
        relay and relay["storm"]["all_caught_up_ms"],
        ceiling["storm"]["all_caught_up_ms"],
        "bare aiohttp reconnect",
        "zero loss",
        checks=checks,
        note=note,
    )
    all_row.met = None if relay is None else checks == "ok" and relay["storm"]["caught_up"] == n
    p50 = Row(
        NAME,
        case,
        "p50 time to caught up",
        "ms",
        relay and relay["storm"]["catchup"]["p50_ms"],
        ceiling["storm"]["catchup"]["p50_ms"],
        "bare aiohttp reconnect",
    )
    return [all_row, p50]
