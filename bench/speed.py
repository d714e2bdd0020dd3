"""How fast the server core is right now: a fixed piece of pure-Python work, timed on that core.

The ceilings make ratios fair, but two targets are absolute (streaming's 10,000 appends/s and
its 50 ms p99), and this workplace's VMs change speed from minute to minute: the work below
took 111 ms and 270 ms on one core within five minutes. A run's figures are read together with
this one, measured just before and after each scenario.
"""

from __future__ import annotations

import subprocess
import sys

__all__ = ["QUIET", "reference_ms"]

# What the work takes on this machine class when it is quiet (twice that in its slow minutes).
QUIET = "110-120 ms"

# Dict stores, int-to-str and a join: the kind of work the relay's event loop does per frame.
_WORK = """
import os, sys, time
if len(sys.argv) > 1:
    os.sched_setaffinity(0, {int(c) for c in sys.argv[1].split(",")})
start = time.perf_counter()
d = {}
for i in range(400_000):
    d[i & 1023] = str(i)
"-".join(d.values())
print(time.perf_counter() - start)
"""


def reference_ms(cpus: set[int]) -> float | None:
    """The reference work's time on `cpus` (all of them when empty), in ms; None if it failed."""
    pin = [",".join(map(str, sorted(cpus)))] if cpus else []
    try:
        out = subprocess.run(
            [sys.executable, "-c", _WORK, *pin],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return float(out.stdout) * 1000
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
