"""ably-js against sandbox apps of the pytest plugin's relay: presence fixtures and faults.

These tests use the plugin's own fixtures (`relay_app`, `relay_app_spec`), as an application's
test suite would; the relay runs in a background thread, so node is run synchronously.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from channel_relay.testing import SandboxApp

HERE = Path(__file__).resolve().parent
FIXTURE_CHANNEL = "fixtures:lobby"


def run_script(node: str, app: SandboxApp, script: str, args: dict[str, Any]) -> dict[str, Any]:
    env = {
        **os.environ,
        "RELAY_PORT": str(app.port),
        "RELAY_KEY": app.key,
        "RELAY_ARGS": json.dumps(args),
        "RELAY_TIMEOUT_MS": "25000",
    }
    proc = subprocess.run(
        [node, str(HERE / "scripts" / script)],
        cwd=HERE,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    result = json.loads(lines[-1][len("RESULT ") :]) if lines else None
    if proc.returncode != 0 or result is None or "failure" in result:
        pytest.fail(
            f"node {script}: exit {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return result


@pytest.fixture
def relay_app_spec() -> dict[str, Any]:
    return {
        "keys": [{}],
        "namespaces": [{"id": "fixtures", "persisted": True}],
        "channels": [
            {
                "name": FIXTURE_CHANNEL,
                "presence": [
                    {"clientId": "ada", "data": "first"},
                    {"clientId": "grace", "data": '{"lang":"cobol"}', "encoding": "json"},
                ],
            }
        ],
    }


def test_presence_fixtures_reach_ably_js(node: str, relay_app: SandboxApp) -> None:
    result = run_script(
        node, relay_app, "sandbox_presence_fixtures.mjs", {"channel": FIXTURE_CHANNEL}
    )
    for view in ("realtime", "rest"):
        members = result[view]
        assert [m["clientId"] for m in members] == ["ada", "grace"], view
        assert members[0]["data"] == "first"
        assert members[1]["data"] == {"lang": "cobol"}  # decoded by ably-js from "json"
        assert {m["action"] for m in members} == {"present"}
        assert len({m["connectionId"] for m in members}) == 1


def test_faults_through_ably_js(node: str, relay_app: SandboxApp) -> None:
    relay_app.faults.fail_publishes("orders", count=3, code=42910)
    result = run_script(
        node,
        relay_app,
        "sandbox_faults.mjs",
        {"failChannel": "orders", "failures": 3, "slowChannel": "slow", "delayMs": 400},
    )
    assert [n["code"] for n in result["nacks"]] == [42910, 42910]
    assert result["restError"]["code"] == 42910
    assert result["restError"]["statusCode"] == 429
    assert result["afterFailures"] == "ok"
    drop = result["drop"]
    assert drop["dropped"] == [drop["idBefore"]]
    assert drop["idAfter"] == drop["idBefore"]  # resumed, not a new connection
    delay = result["delay"]
    assert delay["order"] == ["delayed", "prompt"]
    assert delay["delayedMs"] >= 350
    assert delay["ackedDelayedMs"] < 350  # the ACK is not delayed, only the delivery
    assert delay["promptMs"] < 300
