"""An idle ably-js connection is kept alive by the relay, whichever heartbeat style it asks for."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from interop_support import RunNode
from relay_support import running_relay

if TYPE_CHECKING:
    from channel_relay.server import Relay

MAX_IDLE_MS = 1000


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[Relay]:
    """A relay promising activity every second, so idling past ably-js's deadline is quick."""
    async with running_relay(tmp_path, max_idle_interval=MAX_IDLE_MS) as server:
        yield server


@pytest.mark.parametrize("heartbeats", [False, True], ids=["ws-ping", "protocol-heartbeat"])
async def test_idle_connection_stays_connected(run_node: RunNode, heartbeats: bool) -> None:
    # ably-js drops a transport silent for maxIdleInterval + realtimeRequestTimeout (2 s here).
    out = await run_node(
        "idle.mjs", args={"heartbeats": heartbeats, "idleMs": 5 * MAX_IDLE_MS}, deadline=20
    )
    assert out["changes"] == [], f"connection changed state while idle: {out['changes']}"
    assert out["state"] == "connected"
    assert out["sameConnection"]
