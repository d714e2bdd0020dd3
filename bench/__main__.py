"""`python -m bench [--quick] [--only SCENARIO ...]`: run, print the table, write the JSON."""

from __future__ import annotations

import argparse
import shutil
import sys
import time
import traceback
from pathlib import Path

from .context import Context, Row, Unavailable
from .load.worker import WorkerError, raise_nofile
from .report import render_table, write_json
from .scenarios import SCENARIOS
from .servers import ROOT
from .sizes import FULL, QUICK
from .speed import QUIET, reference_ms

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the harness works")
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS), help="repeatable")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / "results" / "cache")
    parser.add_argument(
        "--relay-src",
        type=Path,
        default=ROOT,
        help="run the relay from this checkout (default: this one), e.g. a `git archive` snapshot",
    )
    args = parser.parse_args(argv)
    raise_nofile()
    sizes = QUICK if args.quick else FULL
    ctx = Context.create(
        sizes, args.quick, args.cache, args.relay_src.resolve(), log=lambda s: print(s, flush=True)
    )
    names = args.only or list(SCENARIOS)
    rows: list[Row] = []
    started = time.monotonic()
    try:
        for name in names:
            print(f"== {name}", flush=True)
            t0 = time.monotonic()
            before = reference_ms(ctx.server_cpus)
            try:
                rows.extend(SCENARIOS[name].run(ctx))
            except (Unavailable, WorkerError, RuntimeError, OSError) as exc:
                print(f"  {name} failed: {exc}", flush=True)
                traceback.print_exc()
                rows.append(Row(name, "-", "scenario error", "", note=str(exc)))
            rows.append(_speed_row(name, before, reference_ms(ctx.server_cpus)))
            print(f"  ({time.monotonic() - t0:.1f} s)", flush=True)
    finally:
        shutil.rmtree(ctx.workdir, ignore_errors=True)
    elapsed = time.monotonic() - started
    print()
    print(render_table(rows, ctx))
    write_json(args.out, rows, ctx, elapsed)
    print(f"\nwrote {args.out} ({elapsed:.0f} s)")
    return 0


def _speed_row(scenario: str, before: float | None, after: float | None) -> Row:
    """The server core's speed around a scenario (bench.speed): its figures are read with it."""
    known = [ms for ms in (before, after) if ms is not None]
    shown = ", ".join("-" if ms is None else f"{ms:.0f}" for ms in (before, after))
    return Row(
        scenario,
        "server core",
        "reference loop, slower of before/after",
        "ms",
        max(known) if known else None,
        note=f"before, after: {shown} ms ({QUIET} when this machine class is quiet)",
    )


if __name__ == "__main__":
    sys.exit(main())
