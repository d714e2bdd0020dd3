"""A publisher far ahead of the store: the relay stops reading its socket once 256 of its
publishes wait for a commit (as a TCP server applies backpressure), and ably-js, which keeps its
own queue, still gets every ACK in order once the store catches up: nothing is lost, nothing is
published twice, and the connection never deadlocks."""

from __future__ import annotations

import asyncio
import threading
import time

import aiohttp
import pytest
from interop_support import RunNode
from store_calls import post

from channel_relay.realtime.acks import _MAX_PENDING
from channel_relay.server import Relay
from channel_relay.store.sqlite import SqliteStore

# The stall below holds the SQLite writer thread.
ENGINES = ["sqlite"]

COUNT = 1000


@pytest.mark.parametrize("dropped", [False, True], ids=["steady", "socket-dropped-while-paused"])
async def test_a_publisher_far_ahead_of_the_store_is_paused_and_every_publish_is_acked_in_order(
    run_node: RunNode, relay: Relay, http: aiohttp.ClientSession, dropped: bool
) -> None:
    """`dropped`: the paused publisher's socket goes away; ably-js resumes on a new one and
    resends what it saw no ACK for, which the relay answers without publishing it twice."""
    # The channel exists before the stall, so publishes only wait for their commit.
    status, _ = await post(http, relay, "flood", {"name": "warm", "data": "x"})
    assert status == 201
    store = relay.store
    assert isinstance(store, SqliteStore)
    release = threading.Event()
    stalled = asyncio.ensure_future(store._write(lambda db: release.wait(30)))
    node = asyncio.ensure_future(
        run_node("publish_flood.mjs", args={"channel": "flood", "count": COUNT}, deadline=60)
    )
    try:
        most = 0
        deadline = time.monotonic() + 20
        while most < _MAX_PENDING and time.monotonic() < deadline and not node.done():
            await asyncio.sleep(0.02)
            most = max((c.acks.unanswered for c in relay.realtime.connections.values()), default=0)
        assert most == _MAX_PENDING, "unanswered publishes did not stop at the bound"
        # Paused: it reads no further while the store is stalled.
        await asyncio.sleep(0.5)
        assert max(c.acks.unanswered for c in relay.realtime.connections.values()) == most
        if dropped:
            for connection in relay.realtime.connections.values():
                if connection.acks.unanswered:
                    connection.abort()
            await asyncio.sleep(1.0)
    finally:
        release.set()
    await stalled
    result = await node
    assert result["acked"] == list(range(COUNT))
    serials = result["serials"]
    assert serials == sorted(serials) and len(set(serials)) == COUNT
    assert result["received"] == [str(i) for i in range(COUNT)]
