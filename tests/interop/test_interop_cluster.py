"""Three relay processes on one PostgreSQL database, driven by unmodified ably-js: subscribers on
two nodes see what a publisher on the third sends, in the same order, nothing lost or repeated;
a node killed mid-stream costs its clients nothing once they reconnect to another node."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from continuity_support import (
    NodeProcess,
    RelayProcess,
    StartProxy,
    start_relay_process,
)

from channel_relay.protocol.serials import parse_serial

COUNT = 150


@pytest.fixture
async def cluster(
    tmp_path: Path, postgres_url: str, processes: list[RelayProcess]
) -> AsyncIterator[list[RelayProcess]]:
    nodes = []
    for name in "abc":
        node = await start_relay_process(
            tmp_path / f"{name}.db", 0, "app1.key1:secret1", "--store", postgres_url
        )
        processes.append(node)
        nodes.append(node)
    yield nodes


def _check_stream(received: list[dict[str, Any]]) -> None:
    """Every message once, in serial order (the order of the publisher's sends may interleave
    within a window of concurrent publishes, never the serials)."""
    names = [m["name"] for m in received]
    assert sorted(names, key=lambda n: int(n[1:])) == [f"m{i}" for i in range(COUNT)], names
    seqs = [parse_serial(m["serial"])[1] for m in received]  # type: ignore[index]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


async def test_subscribers_on_two_nodes_see_a_publisher_on_a_third_identically(
    cluster: list[RelayProcess], nodes: list[NodeProcess]
) -> None:
    a, b, c = cluster
    script = await NodeProcess.start(
        "cluster_stream.mjs",
        port=a.port,
        args={
            "channel": "cluster",
            "count": COUNT,
            "pubPort": a.port,
            "subPorts": [b.port, c.port],
        },
        deadline=60,
    )
    nodes.append(script)
    result = await script.finish(within=60)
    on_b, on_c = result["received"]
    _check_stream(on_b)
    assert on_b == on_c


async def test_clients_of_a_killed_node_reconnect_to_another_and_miss_nothing(
    cluster: list[RelayProcess], nodes: list[NodeProcess], proxies: StartProxy
) -> None:
    a, b, c = cluster
    # The subscriber reaches node B through a proxy: the address its SDK keeps using, which
    # leads to node C once B is gone (what a load balancer does).
    front = await proxies(b.port)
    script = await NodeProcess.start(
        "cluster_stream.mjs",
        port=a.port,
        args={
            "channel": "failover",
            "count": COUNT,
            "pubPort": a.port,
            "subPorts": [front.port, c.port],
            "pauseMs": 50,
        },
        deadline=90,
    )
    nodes.append(script)
    await script.wait_progress("acked", 40, within=60)
    b.kill()
    await b.proc.wait()
    front.target = c.port
    front.drop()
    result = await script.finish(within=90)
    # The subscriber lost node B and reconnected, through the same address, to node C.
    assert script.count("state", who=0, current="disconnected") >= 1
    assert front.accepted >= 2
    via_failover, on_c = result["received"]
    _check_stream(on_c)
    _check_stream(via_failover)
    assert via_failover == on_c


async def test_an_ai_transport_session_spans_three_nodes_and_a_cancel_from_one_reaches_the_agent(
    cluster: list[RelayProcess], nodes: list[NodeProcess]
) -> None:
    """The agent on node A, the user's session on B, another device on C cancelling the run
    mid-stream: the agent's pipe aborts and both devices see the run cancelled with the text
    streamed so far."""
    a, b, c = cluster
    question, answer = "Why is the sky blue?", "Because air scatters blue light more than red."
    script = await NodeProcess.start(
        "ai_cancel.mjs",
        port=a.port,
        args={
            "channel": "ai:cluster",
            "question": question,
            "answer": answer,
            "cancelAt": 4,
            "ports": {"agent": a.port, "sender": b.port, "other": c.port},
        },
        deadline=60,
    )
    nodes.append(script)
    result = await script.finish(within=60)
    assert result["errors"] == []
    assert result["outcome"]["reason"] == "cancelled"
    assert result["handleStatus"] == "cancelled"
    for side in ("sender", "other"):
        assert result[side]["runs"] == [
            {"runId": result["runId"], "clientId": "alice", "status": "cancelled"}
        ]
    assert result["sender"]["conversation"] == result["other"]["conversation"]
