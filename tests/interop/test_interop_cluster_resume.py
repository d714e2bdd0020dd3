"""ably-js whose relay node goes away resumes through another node of the cluster: the same
connectionId (RESUMED, its state is in PostgreSQL), every message once and in order, every
publish ACKed once and stored once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from continuity_support import KEY, NodeProcess, StartProxy
from interop_support import rest_history

from channel_relay.config import Settings
from channel_relay.server import Relay

ENGINES = ["postgresql"]
STREAM = "continuity_stream.mjs"
FAST_RETRY = {"disconnectedRetryTimeout": 500, "suspendedRetryTimeout": 500}


def _node(tmp_path: Path, url: str, index: int) -> Relay:
    return Relay(
        Settings(
            host="127.0.0.1",
            port=0,
            db_path=str(tmp_path / f"node{index}.db"),
            store=url,
            keys=[KEY],
        )
    )


def _connects(node: NodeProcess, who: str) -> list[dict[str, Any]]:
    return [
        e
        for e in node.events
        if e.get("ev") == "state" and e["who"] == who and e["current"] == "connected"
    ]


async def test_ably_js_resumes_through_another_node_and_misses_nothing(
    tmp_path: Path, engine: str | None, proxies: StartProxy, nodes: list[NodeProcess]
) -> None:
    assert engine is not None
    first, second = _node(tmp_path, engine, 0), _node(tmp_path, engine, 1)
    await first.start()
    await second.start()
    try:
        # The clients reach the cluster through one address (a load balancer's).
        proxy = await proxies(first.port)
        count = 400
        node = await NodeProcess.start(
            STREAM,
            port=proxy.port,
            args={
                "channel": "moving",
                "count": count,
                "inFlight": 20,
                "pauseMs": 20,
                "subOptions": FAST_RETRY,
                "pubOptions": FAST_RETRY,
            },
            deadline=60,
        )
        nodes.append(node)
        await node.wait_progress("acked", 100)
        # The first node goes away; from now on the balancer sends everyone to the second.
        proxy.target = second.port
        await first.stop()
        result = await node.finish(within=50)
        items, _ = await rest_history(
            second.port, KEY, "moving", direction="forwards", limit="1000"
        )
    finally:
        for relay in (first, second):
            if relay.accepting:
                await relay.stop()
    names = [m["name"] for m in result["received"]]
    assert names == [f"m{i}" for i in range(count)]
    assert None not in result["acked"]
    assert [m["name"] for m in items if m["name"] != "end"] == names, "stored exactly once"
    for who in ("sub", "pub"):
        connects = _connects(node, who)
        assert len(connects) >= 2, connects
        assert {e["id"] for e in connects} == {connects[0]["id"]}, connects
        assert connects[-1]["reason"] is None, connects[-1]
