"""PostgreSQL restarted under two relay nodes mid-stream, with unmodified ably-js: a publisher on
one node, a subscriber on the other. While the server is down, publishes are NACKed with an Ably
error (never ACKed, never left hanging) and /readyz is 503 on both nodes; once it is back, both
are ready again, the publisher's next publishes are ACKed, and the subscriber, whose node lost its
LISTEN connection, gets everything in serial order. Every ACKed publish is stored exactly once.
A clean (fast) shutdown, an immediate one (every process exits at once, crash recovery at the
next start) and SIGKILL of every server process, each on a server of the test's own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from continuity_support import KEY, NodeProcess
from interop_support import rest_history
from pg_support import PrivateServer
from relay_support import running_relay

from channel_relay.protocol.serials import parse_serial
from channel_relay.server import Relay

# How long the server stays down once both nodes have noticed.
OUTAGE_SECONDS = 2.0


@pytest.fixture
async def cluster(tmp_path: Path, own_postgres: PrivateServer) -> AsyncIterator[list[Relay]]:
    for name in "ab":
        (tmp_path / name).mkdir()
    async with (
        running_relay(tmp_path / "a", store=own_postgres.url) as a,
        running_relay(tmp_path / "b", store=own_postgres.url) as b,
    ):
        yield [a, b]


async def _readiness(http: aiohttp.ClientSession, node: Relay) -> tuple[int, Any]:
    async with http.get(f"{node.url}/readyz") as resp:
        return resp.status, await resp.json()


async def _until_readiness(
    http: aiohttp.ClientSession, nodes: list[Relay], status: int, within: float
) -> list[Any]:
    """Poll /readyz on every node until each answers `status`; the bodies."""
    deadline = time.monotonic() + within
    while True:
        answers = [await _readiness(http, node) for node in nodes]
        if all(code == status for code, _ in answers):
            return [body for _, body in answers]
        assert time.monotonic() < deadline, f"/readyz not {status} in {within} s: {answers}"
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("mode", ["fast", "immediate", "kill"])
async def test_a_postgresql_restart_mid_stream_loses_nothing_acked_and_service_resumes(
    tmp_path: Path,
    own_postgres: PrivateServer,
    cluster: list[Relay],
    nodes: list[NodeProcess],
    http: aiohttp.ClientSession,
    mode: str,
) -> None:
    a, b = cluster
    release = tmp_path / "release"
    script = await NodeProcess.start(
        "pg_restart_stream.mjs",
        port=a.port,
        args={
            "channel": "restart",
            "pubPort": a.port,
            "subPort": b.port,
            "pauseMs": 20,
            "release": str(release),
        },
        deadline=100,
    )
    nodes.append(script)
    await script.wait_progress("acked", 20, within=30)
    await _until_readiness(http, cluster, 200, within=10)

    await asyncio.to_thread(own_postgres.stop, mode)
    down = time.monotonic()
    reasons = await _until_readiness(http, cluster, 503, within=15)
    await script.wait_event(lambda e: e.get("ev") == "nacked", within=15)
    await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down)))
    await asyncio.to_thread(own_postgres.start)

    await _until_readiness(http, cluster, 200, within=30)
    # The publisher's later publishes are ACKed again.
    resumed_at = script.progress("acked")
    await script.wait_progress("acked", resumed_at + 20, within=30)
    release.touch()
    result = await script.finish(within=40)

    outcomes: list[dict[str, Any]] = result["outcomes"]
    acked = [o["name"] for o in outcomes if o["acked"]]
    refused = [o for o in outcomes if not o["acked"]]
    assert refused, "no publish was refused while the server was down"
    # Refused with an Ably error saying the store failed, as a NACK (no hang, no ACK).
    assert {(o["error"]["code"], o["error"]["statusCode"]) for o in refused} == {(50000, 500)}
    assert outcomes[-1]["acked"] and outcomes[-20]["acked"]
    assert all(r["status"] == "not ready" and r["reason"] for r in reasons), reasons

    items, _ = await rest_history(b.port, KEY, "restart", direction="forwards", limit="1000")
    stored = [m["name"] for m in items if m["name"] != "end"]
    # Every ACKed publish exactly once; whatever else is there was refused in doubt (its
    # connection went down with its commit), never twice. In publish order: serial order.
    assert len(stored) == len(set(stored)), stored
    assert set(acked) <= set(stored), sorted(set(acked) - set(stored))
    assert set(stored) - set(acked) <= {o["name"] for o in refused}
    assert stored == sorted(stored, key=lambda name: int(name[1:]))
    # The subscriber on the other node: everything stored, once, in serial order.
    received = result["received"]
    assert [m["name"] for m in received] == stored
    seqs = [parse_serial(m["serial"])[1] for m in received]  # type: ignore[index]
    assert seqs == sorted(seqs)
