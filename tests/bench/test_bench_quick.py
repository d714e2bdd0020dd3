"""Keeps the benchmark harness working: every scenario once at a tiny size (not a timed test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from pg_support import admin_server

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = {"fanout", "durable", "streaming", "history", "resume", "idle", "sdk", "cluster"}
ROW_KEYS = {
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
    "note",
}


@pytest.mark.timeout(320)
def test_bench_quick(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    # The cluster scenario's PostgreSQL: the tests' server, or the private one they start when
    # none answers (pg_support), so the quick run needs nothing installed by hand.
    with admin_server() as admin:
        server = urlunsplit(urlsplit(admin)._replace(path=""))
        proc = subprocess.run(
            [sys.executable, "-m", "bench", "--quick", "--out", str(out), "--cache", str(tmp_path)],
            cwd=ROOT,
            env={**os.environ, "BENCH_PG": server},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    assert doc["quick"] is True
    rows = doc["rows"]
    assert {row["scenario"] for row in rows} == SCENARIOS
    for row in rows:
        assert set(row) >= ROW_KEYS, row
        assert row["metric"] != "scenario error", row
        # a ceiling is measured in every scenario (the sdk one compares with the fast client)
        measured = ("p99 publish->", "p99 append->deliver", "p99 REST", "deliveries", "ACKed")
        if row["scenario"] != "sdk" and row["metric"].startswith(measured):
            assert row["ceiling"] is not None, row
        # zero loss, zero duplicates, in order, wherever the relay ran
        for bad in ("LOST", "DUP", "REORDER", "NACK", "bad page"):
            assert bad not in (row["checks"] or ""), row
    # the relay's own event-loop lag beside its latency, read from its /metrics
    lags = {
        row["scenario"]: row["relay"] for row in rows if row["metric"] == "event-loop lag, mean"
    }
    assert set(lags) == {"durable", "streaming"}
    assert all(lag is not None and lag >= 0 for lag in lags.values()), lags
    # how fast the server core was around each scenario, to read its figures with
    speeds = {row["scenario"]: row["relay"] for row in rows if row["case"] == "server core"}
    assert set(speeds) == SCENARIOS
    assert all(ms is not None and ms > 0 for ms in speeds.values()), speeds
