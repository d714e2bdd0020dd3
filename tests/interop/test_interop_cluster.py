"""Three relay processes on one PostgreSQL database, driven by unmodified ably-js: subscribers on
two nodes see what a publisher on the third sends, in the same order, nothing lost or repeated;
a node killed mid-stream costs its clients nothing once they reconnect to another node; push
registrations, annotations and their summaries, live stats and large ephemeral messages are the
cluster's, whichever node they went through."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from continuity_support import (
    NodeProcess,
    RelayProcess,
    StartProxy,
    start_cluster,
)

from channel_relay.protocol.serials import parse_serial

COUNT = 150
HEADERS = {"Authorization": "Basic " + base64.b64encode(b"app1.key1:secret1").decode()}
# Seconds between a node's flushes of its live stats: short, so other nodes see them soon.
STATS_FLUSH = "0.3"


@pytest.fixture
async def cluster(
    tmp_path: Path, postgres_url: str, processes: list[RelayProcess]
) -> AsyncIterator[list[RelayProcess]]:
    yield await start_cluster(
        tmp_path, postgres_url, processes, "--stats-flush-interval", STATS_FLUSH
    )


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


async def _run(script: str, nodes: list[NodeProcess], port: int, args: dict[str, Any]) -> Any:
    process = await NodeProcess.start(script, port=port, args=args, deadline=60)
    nodes.append(process)
    return await process.finish(within=60)


async def test_a_push_device_registered_on_one_node_is_notified_through_another(
    cluster: list[RelayProcess], nodes: list[NodeProcess], http: aiohttp.ClientSession
) -> None:
    a, b, c = cluster
    ports = [a.port, b.port, c.port]
    result = await _run("cluster_push.mjs", nodes, a.port, {"channel": "news", "ports": ports})
    assert result["listedOnB"] == ["dev-cluster"]
    assert result["subscribedOnB"] == ["dev-cluster"]
    assert result["fromChannel"] == {"notification": {"title": "Channel via B"}}
    assert result["direct"] == {"notification": {"title": "Direct via B"}}
    # What node B recorded is what node A lists.
    async with http.get(
        f"http://127.0.0.1:{a.port}/push/notifications?deviceId=dev-cluster", headers=HEADERS
    ) as resp:
        assert resp.status == 200, await resp.text()
        recorded = await resp.json()
    titles = [n["payload"]["notification"]["title"] for n in recorded]
    assert titles == ["Channel via B", "Direct via B"]


async def test_annotations_through_two_nodes_summarize_alike_on_both(
    cluster: list[RelayProcess], nodes: list[NodeProcess]
) -> None:
    a, b, _ = cluster
    per_node = 6
    result = await _run(
        "cluster_annotations.mjs",
        nodes,
        a.port,
        {"channel": "reviews", "ports": [a.port, b.port], "perNode": per_node},
    )
    total = 2 * per_node
    on_a, on_b = result["watchers"]
    # Clients in the order their annotations committed, the same for every node.
    clients = on_a["last"]["reactions:distinct.v1"]["👍"]["clientIds"]
    assert sorted(clients) == sorted(f"u{i}" for i in range(total))
    expected = {
        "views:total.v1": {"total": total},
        "reactions:distinct.v1": {"👍": {"total": total, "clientIds": clients, "clipped": False}},
    }
    for watcher in (on_a, on_b):
        # Summaries never go back, and end on the aggregate of every annotation.
        assert watcher["views"] == sorted(watcher["views"])
        assert watcher["last"] == expected
        assert watcher["history"] == expected
        assert len(watcher["annotations"]) == 2 * total
    assert on_a["annotations"] == on_b["annotations"]
    assert on_a["listed"] == on_b["listed"]
    assert sorted(on_a["listed"]) == on_a["annotations"]


async def test_stats_and_large_ephemeral_messages_cross_nodes(
    cluster: list[RelayProcess], nodes: list[NodeProcess]
) -> None:
    a, b, _ = cluster
    result = await _run(
        "cluster_stats_ephemeral.mjs",
        nodes,
        a.port,
        {"channel": "counted", "ports": [a.port, b.port], "count": 7},
    )
    assert result["countedOnB"] == 7
    assert result["ephemeral"] == {"size": 20_000, "intact": True, "serial": None}
