"""The SDK path: a small fan-out through unmodified ably-js (node, msgpack) against the relay, next
to the fast Python load client on the same relay with the same N and rate (the "ceiling" column here
is the fast client: what the relay gives when the client costs nothing). Skipped when node or the
pinned ably package (tests/interop/node_modules/ably) is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

from ..context import Context, Row, Unavailable
from ..servers import BENCH_KEY, ROOT, ServerProcess
from ..stats import LatencyHistogram

__all__ = ["NAME", "run"]

NAME = "sdk"
SCRIPT = ROOT / "bench" / "node" / "ably_fanout.mjs"
MODULE = ROOT / "tests" / "interop" / "node_modules" / "ably"


def _ably_js(ctx: Context, server: ServerProcess) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None or not (MODULE / "package.json").exists():
        raise Unavailable("skipped: node or tests/interop/node_modules/ably missing")
    sizes = ctx.sizes
    args = {
        "module": str(MODULE),
        "port": server.port,
        "key": BENCH_KEY,
        "channel": "sdk-fanout",
        "subscribers": sizes.sdk_subscribers,
        "rate": sizes.sdk_rate,
        "seconds": sizes.sdk_s,
    }
    proc = subprocess.Popen(
        [node, str(SCRIPT), json.dumps(args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    if ctx.load_cpus:
        os.sched_setaffinity(proc.pid, ctx.load_cpus)
    try:
        out, err = proc.communicate(timeout=sizes.sdk_s + 90)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise Unavailable("ably-js run exceeded its time limit") from None
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        raise Unavailable(f"ably-js run failed: {err.strip()[-300:]}")
    result = json.loads(lines[-1])
    if "error" in result:
        raise Unavailable(f"ably-js: {result['error']}")
    return result


def _fast_client(ctx: Context, server: ServerProcess) -> dict[str, Any]:
    sizes = ctx.sizes
    ep = ctx.endpoint(server)
    with ctx.workers() as handles:
        subs = ctx.spawn_into(
            handles,
            "bench.load.subscribers:main",
            {"endpoint": ep, "channels": ["sdk-fast"] * sizes.sdk_subscribers},
            "subs",
        )
        subs.recv(60)
        pub = ctx.spawn_into(
            handles, "bench.load.publishers:paced", {"endpoint": ep, "channel": "sdk-fast"}, "pub"
        )
        pub.recv(30)
        res = pub.request(
            {"cmd": "run", "rate": sizes.sdk_rate, "duration": sizes.sdk_s}, sizes.sdk_s + 60
        )
        st = subs.request({"cmd": "wait", "last": {"sdk-fast": res["last_seq"]}, "timeout": 10}, 60)
    return {**LatencyHistogram.from_dict(st["hist"]).summary(), "seq": st["seq"]}


def run(ctx: Context) -> list[Row]:
    sizes = ctx.sizes
    case = f"ably-js: 1 pub -> {sizes.sdk_subscribers} subs, {sizes.sdk_rate:.0f} msg/s"
    try:
        with ctx.relay() as server:
            fast = _fast_client(ctx, server)
            sdk = _ably_js(ctx, server)
    except Unavailable as exc:
        ctx.details[NAME] = {"skipped": str(exc)}
        return [Row(NAME, case, "p99 publish->deliver", "ms", note=str(exc))]
    ctx.details[NAME] = {"ably_js": sdk, "fast_client": fast}
    expected = sdk["published"] * sdk["subscribers"]
    problems = sdk["lost"] or sdk["dups"] or sdk["delivered"] != expected
    checks = (
        "ok"
        if not problems
        else (f"LOST {sdk['lost']} DUP {sdk['dups']} delivered {sdk['delivered']}/{expected}")
    )
    return [
        Row(
            NAME,
            case,
            "p99 publish->deliver",
            "ms",
            sdk["p99_ms"],
            fast["p99_ms"],
            "same relay, fast Python client",
            checks=checks,
            note=f"ably-js connect of {sizes.sdk_subscribers} clients: {sdk['connect_ms']} ms",
        ),
        Row(
            NAME,
            case,
            "p50 publish->deliver",
            "ms",
            sdk["p50_ms"],
            fast["p50_ms"],
            "same relay, fast Python client",
            checks=checks,
        ),
    ]
