"""Scenario 1, fan-out: 1 publisher -> N subscribers on one channel.

For each N: a trial at a fixed moderate rate, then a short search for the highest publish rate that
keeps publish-to-deliver p99 under 100 ms with every delivery complete. Reported: deliveries/s,
p50/p99, and the server's CPU time per delivery (robust when the load generator is the bottleneck).
"""

from __future__ import annotations

import time
from typing import Any

from ..context import Context, Row, Unavailable, seq_checks
from ..load.worker import WorkerHandle
from ..servers import ServerProcess
from ..stats import LatencyHistogram

__all__ = ["NAME", "run"]

NAME = "fanout"
P99_BOUND_MS = 100.0


def _trial(
    server: ServerProcess,
    subs: WorkerHandle,
    pub: WorkerHandle,
    rate: float,
    duration: float,
    n: int,
) -> dict[str, Any]:
    subs.request({"cmd": "reset"}, 30)
    cpu0 = server.cpu_seconds()
    res = pub.request({"cmd": "run", "rate": rate, "duration": duration}, duration + 60)
    st = subs.request({"cmd": "wait", "last": {"fanout": res["last_seq"]}, "timeout": 10.0}, 60)
    cpu = server.cpu_seconds() - cpu0
    hist = LatencyHistogram.from_dict(st["hist"])
    span = max(res["elapsed"], (st["last_ns"] - st["first_ns"]) / 1e9, 1e-9)
    count = st["count"]
    trial = {
        "rate": rate,
        "sent_rate": res["rate"],
        "deliveries": count,
        "deliveries_per_s": count / span,
        "p50_ms": hist.percentile_ms(50),
        "p99_ms": hist.percentile_ms(99),
        "max_ms": hist.max_us / 1000,
        "server_us_per_delivery": cpu / count * 1e6 if count else None,
        "server_cpu_util": cpu / span,
        "load_cpu_util": st["cpu_s"] / span,
        "complete": st["complete"],
        "seq": st["seq"],
        "ack": res.get("ack"),
        "nacks": res.get("nacks"),
    }
    p99 = trial["p99_ms"]
    trial["ok"] = bool(
        st["complete"]
        and p99 is not None
        and p99 < P99_BOUND_MS
        and res["rate"] >= 0.95 * rate
        and count >= 0.999 * res["sent"] * n
    )
    return trial


def _search(
    server: ServerProcess, subs: WorkerHandle, pub: WorkerHandle, n: int, ctx: Context
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """Find the highest passing rate: from a first guess, double while trials pass or halve
    while they fail (so a slow or loaded machine still gets a figure), then bisect twice
    between the last pass and the first failure. Bounded by a time budget, except that a
    search with no passing trial yet goes on halving down to a floor."""
    sizes = ctx.sizes
    deadline = time.monotonic() + sizes.fanout_search_budget_s
    floor = sizes.fanout_moderate_rate / 8
    rate = max(sizes.fanout_moderate_rate, 20_000.0 / n)
    best: dict[str, Any] | None = None
    trials = []
    low, high = 0.0, 0.0
    while (time.monotonic() < deadline or best is None) and floor <= rate <= 200_000:
        trial = _trial(server, subs, pub, rate, sizes.fanout_trial_s, n)
        trials.append(trial)
        if trial["ok"]:
            best, low = trial, rate
            if high:
                break
            rate *= 2
        else:
            high = rate
            if low:
                break
            rate /= 2
    for _ in range(2):
        if not high or not low or time.monotonic() > deadline:
            break
        rate = (low + high) / 2
        trial = _trial(server, subs, pub, rate, sizes.fanout_trial_s, n)
        trials.append(trial)
        if trial["ok"]:
            best, low = trial, rate
        else:
            high = rate
    return best, trials


def _measure(ctx: Context, server: ServerProcess, n: int) -> dict[str, Any]:
    ep = ctx.endpoint(server)
    with ctx.workers() as handles:
        subs = ctx.spawn_into(
            handles,
            "bench.load.subscribers:main",
            {"endpoint": ep, "channels": ["fanout"] * n},
            "subs",
        )
        ready = subs.recv(120)
        if ready["ready"] < n:
            raise Unavailable(f"only {ready['ready']}/{n} subscribers attached: {ready['errors']}")
        pub = ctx.spawn_into(
            handles, "bench.load.publishers:paced", {"endpoint": ep, "channel": "fanout"}, "pub"
        )
        pub.recv(30)
        sizes = ctx.sizes
        _trial(server, subs, pub, sizes.fanout_moderate_rate, min(0.5, sizes.fanout_trial_s), n)
        moderate = _trial(
            server, subs, pub, sizes.fanout_moderate_rate, sizes.fanout_trial_s * 2, n
        )
        best, trials = _search(server, subs, pub, n, ctx)
        final = subs.request({"cmd": "wait", "last": {}, "timeout": 0.1}, 30)
    return {"moderate": moderate, "max": best, "trials": trials, "final_seq": final["seq"]}


def _all_seq(result: dict[str, Any]) -> dict[str, int]:
    totals = {"lost": 0, "dups": 0, "reordered": 0}
    for trial in [result["moderate"], *result["trials"]]:
        for key in totals:
            totals[key] += trial["seq"][key]
    return totals


def run(ctx: Context) -> list[Row]:
    rows: list[Row] = []
    details: dict[str, Any] = {}
    for n in ctx.sizes.fanout_subscribers:
        with ctx.ceiling() as server:
            ceiling = _measure(ctx, server, n)
        relay: dict[str, Any] | None = None
        note = ""
        try:
            with ctx.relay() as server:
                relay = _measure(ctx, server, n)
        except Unavailable as exc:
            note = str(exc)
        details[str(n)] = {"ceiling": ceiling, "relay": relay}
        best = _fmt_rate(relay and relay["max"])
        ctx.log(f"  fanout {n}: ceiling max {_fmt_rate(ceiling['max'])}, relay {best}")
        rows.extend(_rows(n, ceiling, relay, note, ctx))
    ctx.details[NAME] = details
    return rows


def _fmt_rate(trial: dict[str, Any] | None) -> str:
    if not trial:
        return "n/a"
    return f"{trial['deliveries_per_s']:.0f} deliveries/s at {trial['rate']:.0f} msg/s"


def _rows(
    n: int, ceiling: dict[str, Any], relay: dict[str, Any] | None, note: str, ctx: Context
) -> list[Row]:
    big = n == max(ctx.sizes.fanout_subscribers)
    rmod = relay["moderate"] if relay else None
    rmax = relay["max"] if relay else None
    cmax = ceiling["max"]
    checks = seq_checks({**_all_seq(relay), "streams": 0}) if relay else ""
    case = f"1 pub -> {n} subs"
    rows = []
    relay_rate = rmax["deliveries_per_s"] if rmax else None
    ceil_rate = cmax["deliveries_per_s"] if cmax else None
    row = Row(
        NAME,
        case,
        "deliveries/s at max rate (p99<100ms)",
        "/s",
        relay_rate,
        ceil_rate,
        "bare aiohttp broadcast",
        checks=checks,
        note=note,
    )
    if big:
        row.target = ">= 90% of ceiling"
        row.met = None if row.ratio is None else row.ratio >= 0.9
    if rmax and cmax:
        row.note = (
            f"relay {rmax['rate']:.0f} msg/s, ceiling {cmax['rate']:.0f} msg/s; load cpu "
            f"{rmax['load_cpu_util']:.0%}/{cmax['load_cpu_util']:.0%}"
        )
    rows.append(row)
    cpu = Row(
        NAME,
        case,
        "server CPU per delivery at max rate",
        "us",
        rmax and rmax["server_us_per_delivery"],
        cmax and cmax["server_us_per_delivery"],
        "bare aiohttp broadcast",
        note="lower is better; ratio = relay/ceiling cost",
    )
    rows.append(cpu)
    for label, key in (("p50", "p50_ms"), ("p99", "p99_ms")):
        mrow = Row(
            NAME,
            case,
            f"{label} publish->deliver at {ctx.sizes.fanout_moderate_rate:.0f} msg/s",
            "ms",
            rmod and rmod[key],
            ceiling["moderate"][key],
            "bare aiohttp broadcast",
            checks=seq_checks(rmod["seq"]) if rmod else "",
        )
        if big and label == "p99":
            mrow.target = "<= 50 ms"
            mrow.met = None if mrow.relay is None else mrow.relay <= 50.0
        rows.append(mrow)
    return rows
