"""The printed table and bench/results/latest.json."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from .context import Context, Row
from .servers import ROOT

__all__ = ["render_table", "write_json"]


def _num(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "/s" or abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def render_table(rows: list[Row], ctx: Context) -> str:
    header = [
        "scenario",
        "case",
        "metric",
        "unit",
        "relay",
        "ceiling",
        "ratio",
        "target",
        "met",
        "checks",
    ]
    lines = [header]
    for row in rows:
        ratio = row.ratio
        met = "-" if row.met is None else ("MET" if row.met else "MISSED")
        lines.append(
            [
                row.scenario,
                row.case,
                row.metric,
                row.unit,
                _num(row.relay, row.unit),
                _num(row.ceiling, row.unit),
                "-" if ratio is None else f"{ratio:.2f}",
                row.target or "-",
                met if row.target else "-",
                row.checks or "-",
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for i, line in enumerate(lines):
        out.append("  ".join(cell.ljust(widths[j]) for j, cell in enumerate(line)).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    notes = [f"- {r.scenario} / {r.case} / {r.metric}: {r.note}" for r in rows if r.note]
    pin = (
        f"relay and ceiling servers pinned to CPU {sorted(ctx.server_cpus)}, load generators "
        f"to CPU {sorted(ctx.load_cpus)} (os.sched_setaffinity)"
        if ctx.server_cpus
        else "no CPU pinning (fewer than 2 CPUs)"
    )
    return "\n".join([*out, "", pin, *notes])


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def write_json(path: Path, rows: list[Row], ctx: Context, elapsed: float) -> dict[str, Any]:
    doc = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": ctx.quick,
        "elapsed_s": round(elapsed, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "server_cpus": sorted(ctx.server_cpus),
            "load_cpus": sorted(ctx.load_cpus),
        },
        "commit": _git_commit(),
        "rows": [row.to_dict() for row in rows],
        "details": ctx.details,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    return doc
