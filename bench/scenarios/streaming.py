"""Scenario 3, AI token streaming: M concurrent streamed messages (one channel and one publisher
connection each), every one appended to at R appends/s, S subscribers per channel. Reported:
appends/s sustained (ACKed), append-to-deliver p50/p99, append-to-ACK p99. The ceiling is the same
shape through the bare broadcast server (no ACK, no storage, no aggregation).
"""

from __future__ import annotations

from typing import Any

from ..context import Context, Row, Unavailable, mean_lag_ms, seq_checks
from ..servers import ServerProcess
from ..stats import LatencyHistogram

__all__ = ["NAME", "run"]

NAME = "streaming"


def _measure(ctx: Context, server: ServerProcess) -> dict[str, Any]:
    sizes = ctx.sizes
    ep = ctx.endpoint(server)
    channels = [f"stream-{i}" for i in range(sizes.stream_messages)]
    sub_channels = [ch for ch in channels for _ in range(sizes.stream_subscribers)]
    with ctx.workers() as handles:
        subs = ctx.spawn_into(
            handles,
            "bench.load.subscribers:main",
            {"endpoint": ep, "channels": sub_channels},
            "subs",
        )
        ready = subs.recv(120)
        if ready["ready"] < len(sub_channels):
            raise Unavailable(f"only {ready['ready']}/{len(sub_channels)} subscribers attached")
        params = {"endpoint": ep, "channels": channels, "rate": sizes.stream_rate}
        pub = ctx.spawn_into(handles, "bench.load.publishers:streaming", params, "streams")
        ready = pub.recv(120)
        if ready.get("unavailable"):
            pub.send({"cmd": "close"})
            raise Unavailable(ready["unavailable"])
        subs.request({"cmd": "reset"}, 30)
        cpu0, written0, lag0 = server.cpu_seconds(), server.write_bytes(), server.loop_lag()
        res = pub.request({"cmd": "run", "duration": sizes.stream_s}, sizes.stream_s + 60)
        res["loop_lag_ms"] = mean_lag_ms(lag0, server.loop_lag())
        st = subs.request({"cmd": "wait", "last": res["last"], "timeout": 10.0}, 60)
        res["server_cpu_util"] = (server.cpu_seconds() - cpu0) / res["elapsed"]
        res["server_write_bytes"] = server.write_bytes() - written0
        pub.send({"cmd": "close"})
    hist = LatencyHistogram.from_dict(st.pop("hist"))
    return {
        **res,
        "deliver": hist.summary(),
        "deliveries": st["count"],
        "seq": st["seq"],
        "complete": st["complete"],
        "load_cpu_util": st["cpu_s"] / res["elapsed"],
    }


def run(ctx: Context) -> list[Row]:
    sizes = ctx.sizes
    with ctx.ceiling() as server:
        ceiling = _measure(ctx, server)
    relay: dict[str, Any] | None = None
    note = ""
    try:
        with ctx.relay() as server:
            relay = _measure(ctx, server)
    except Unavailable as exc:
        note = f"not available: {exc}"
    ctx.details[NAME] = {"ceiling": ceiling, "relay": relay, "note": note}
    case = (
        f"{sizes.stream_messages} streams x {sizes.stream_rate:.0f}/s, "
        f"{sizes.stream_subscribers} subs each"
    )
    checks = seq_checks(relay["seq"]) if relay else ""
    if relay and (relay["nacks"] or relay["unacked"]):
        checks += f" NACK {relay['nacks']} UNACKED {relay['unacked']}"
    rate = Row(
        NAME,
        case,
        "appends/s sustained (ACKed)",
        "/s",
        relay and relay["rate"],
        ceiling["rate"],
        "bare aiohttp broadcast",
        ">= 10,000/s",
        checks=checks,
        note=note,
    )
    # The load offers exactly streams x rate appends/s; a relay that keeps up measures within a
    # few appends of it (the bare ceiling does too), so "sustained" means within 1% of the offer.
    offered = sizes.stream_messages * sizes.stream_rate
    rate.met = None if rate.relay is None else offered >= 10_000 and rate.relay >= 0.99 * offered
    rate.note = rate.note or f"offered {offered:,.0f} appends/s"
    p99 = Row(
        NAME,
        case,
        "p99 append->deliver",
        "ms",
        relay and relay["deliver"]["p99_ms"],
        ceiling["deliver"]["p99_ms"],
        "bare aiohttp broadcast",
        "<= 50 ms",
        checks=checks,
    )
    p99.met = None if p99.relay is None else p99.relay <= 50.0
    p50 = Row(
        NAME,
        case,
        "p50 append->deliver",
        "ms",
        relay and relay["deliver"]["p50_ms"],
        ceiling["deliver"]["p50_ms"],
        "bare aiohttp broadcast",
    )
    ack = Row(NAME, case, "p99 append->ACK", "ms", relay and relay["ack"]["p99_ms"], None)
    lag = Row(NAME, case, "event-loop lag, mean", "ms", relay and relay["loop_lag_ms"], None)
    return [rate, p99, p50, ack, lag]
