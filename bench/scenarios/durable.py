"""Scenario 2, durable publishes: 50 publishers over 1,000 channels, each keeping a window of
publishes in flight. Relay: ACKed publishes/s and publish-to-ACK p50/p99. Ceilings: the same load
against the bare aiohttp echo server (the target is relative to it), and the bare SQLite WAL
group-commit writer (FULL and NORMAL) for the cost of durability alone.
"""

from __future__ import annotations

from typing import Any

from ..context import Context, Row, Unavailable, ack_checks, mean_lag_ms
from ..servers import ServerProcess

__all__ = ["NAME", "measure", "run", "sqlite_ceiling"]

NAME = "durable"


def measure(ctx: Context, server: ServerProcess) -> dict[str, Any]:
    sizes = ctx.sizes
    params = {
        "endpoint": ctx.endpoint(server),
        "channels": [f"durable-{i}" for i in range(sizes.durable_channels)],
        "publishers": sizes.durable_publishers,
        "window": sizes.durable_window,
    }
    with ctx.workers() as handles:
        pub = ctx.spawn_into(handles, "bench.load.publishers:durable", params, "durable")
        pub.recv(120)
        cpu0, written0, lag0 = server.cpu_seconds(), server.write_bytes(), server.loop_lag()
        res = pub.request({"cmd": "run", "duration": sizes.durable_s}, sizes.durable_s + 60)
        res["loop_lag_ms"] = mean_lag_ms(lag0, server.loop_lag())
        res["server_cpu_util"] = (server.cpu_seconds() - cpu0) / res["elapsed"]
        res["server_write_bytes"] = server.write_bytes() - written0
        pub.send({"cmd": "close"})
    return res


def sqlite_ceiling(ctx: Context, history_messages: int = 0) -> dict[str, Any]:
    sizes = ctx.sizes
    params = {
        "dir": str(ctx.workdir),
        "inflight": [sizes.durable_publishers * sizes.durable_window, 5000],
        "channels": sizes.durable_channels,
        "seconds": sizes.sqlite_s,
        "history_messages": history_messages,
        "history_requests": sizes.history_requests,
        "history_db": str(ctx.cache_dir / f"sqlite-ceiling-history-{history_messages}.db"),
    }
    with ctx.workers() as handles:
        # the writer is a server-side cost: pin it where the relay runs
        from ..load.worker import spawn

        handle = spawn("bench.sqlite_ceiling:main", params, ctx.server_cpus, "sqlite")
        handles.append(handle)
        return handle.recv(300)


def run(ctx: Context) -> list[Row]:
    with ctx.ceiling() as server:
        echo = measure(ctx, server)
    sqlite = sqlite_ceiling(ctx)
    relay: dict[str, Any] | None = None
    note = ""
    try:
        with ctx.relay() as server:
            relay = measure(ctx, server)
    except Unavailable as exc:
        note = str(exc)
    ctx.details[NAME] = {"echo_ceiling": echo, "sqlite_ceiling": sqlite, "relay": relay}
    sizes = ctx.sizes
    case = (
        f"{sizes.durable_publishers} pubs x {sizes.durable_channels} ch, "
        f"window {sizes.durable_window}"
    )
    checks = ack_checks(relay)
    rate = Row(
        NAME,
        case,
        "ACKed publishes/s",
        "/s",
        relay and relay["rate"],
        echo["rate"],
        "bare aiohttp echo",
        ">= 50% of ceiling",
        checks=checks,
        note=note,
    )
    rate.met = None if rate.ratio is None else rate.ratio >= 0.5
    p99 = Row(
        NAME,
        case,
        "p99 publish->ACK",
        "ms",
        relay and relay["ack"]["p99_ms"],
        echo["ack"]["p99_ms"],
        "bare aiohttp echo",
        "<= 20 ms",
        checks=checks,
    )
    p99.met = None if p99.relay is None else p99.relay <= 20.0
    p50 = Row(
        NAME,
        case,
        "p50 publish->ACK",
        "ms",
        relay and relay["ack"]["p50_ms"],
        echo["ack"]["p50_ms"],
        "bare aiohttp echo",
    )
    lag = Row(NAME, case, "event-loop lag, mean", "ms", relay and relay["loop_lag_ms"], None)
    rows = [rate, p99, p50, lag]
    rows.extend(
        Row(
            NAME,
            f"sqlite group commit, {gc['inflight']} rows in flight",
            f"rows/s synchronous={gc['synchronous']}",
            "/s",
            relay and relay["rate"],
            gc["rows_per_s"],
            "bare SQLite WAL writer",
            note=f"commit p99 {gc['commit']['p99_ms']} ms, {gc['rows_per_commit']:.0f} rows/commit",
        )
        for gc in sqlite["group_commit"]
    )
    return rows
