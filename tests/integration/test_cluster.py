"""Three relay nodes on one PostgreSQL database: every subscriber, on whichever node, receives
the same events in the same serial order, nothing lost or repeated, whichever node they were
published through; changes to one message through several nodes aggregate; the LISTEN
connection lost mid-stream costs nothing."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import asyncpg
import pytest
from raw_client import RawClient, connect_raw
from relay_support import APP_KEY, running_relay

from channel_relay.protocol.serials import parse_serial
from channel_relay.server import Relay
from channel_relay.store.base import LogEvent

MESSAGE = 15
HEADERS = {"Authorization": "Basic " + base64.b64encode(APP_KEY.encode()).decode()}


@pytest.fixture
async def nodes(tmp_path: Path, postgres_url: str) -> AsyncIterator[list[Relay]]:
    started: list[Relay] = []
    async with (
        running_relay(tmp_path / "a", store=postgres_url) as a,
        running_relay(tmp_path / "b", store=postgres_url) as b,
        running_relay(tmp_path / "c", store=postgres_url) as c,
    ):
        started += [a, b, c]
        yield started


@pytest.fixture(autouse=True)
def _folders(tmp_path: Path) -> None:
    for name in "abc":
        (tmp_path / name).mkdir()


async def _subscriber(relay: Relay, channel: str) -> RawClient:
    client, connected = await connect_raw(relay.port, APP_KEY, "json")
    assert connected["action"] == 4, connected
    attached = await client.attach(channel)
    assert attached["action"] == 11, attached
    return client


async def _received(client: RawClient, count: int) -> list[dict[str, Any]]:
    """The next `count` messages delivered to `client` (its MESSAGE frames flattened)."""
    messages: list[dict[str, Any]] = []
    while len(messages) < count:
        frame = await client.recv_action(MESSAGE, within=20)
        messages.extend(frame["messages"])
    return messages


async def _publish(
    http: aiohttp.ClientSession, relay: Relay, channel: str, body: Any
) -> dict[str, Any]:
    async with http.post(
        f"{relay.url}/channels/{channel}/messages", json=body, headers=HEADERS
    ) as resp:
        assert resp.status == 201, await resp.text()
        result: dict[str, Any] = await resp.json()
        return result


def _seqs(messages: list[dict[str, Any]]) -> list[int]:
    seqs = []
    for message in messages:
        parsed = parse_serial(message.get("version", {}).get("serial") or message["serial"])
        assert parsed is not None
        seqs.append(parsed[1])
    return seqs


async def test_subscribers_on_every_node_get_every_publish_once_in_serial_order(
    nodes: list[Relay], http: aiohttp.ClientSession
) -> None:
    _, b, c = nodes
    subscribers = [await _subscriber(node, "orders") for node in (b, c)]
    # Publishes through all three nodes at once: the serials interleave.
    count = 60
    await asyncio.gather(
        *(_publish(http, nodes[i % 3], "orders", {"data": f"m{i}"}) for i in range(count))
    )
    received = [await _received(s, count) for s in subscribers]
    assert _seqs(received[0]) == list(range(1, count + 1))
    assert [m["data"] for m in received[0]] == [m["data"] for m in received[1]]
    assert sorted(m["data"] for m in received[0]) == sorted(f"m{i}" for i in range(count))
    for subscriber in subscribers:
        await subscriber.close()


async def test_small_and_large_commits_reach_other_nodes_alike(
    nodes: list[Relay], http: aiohttp.ClientSession
) -> None:
    # A small commit's messages ride in its notification; a large one's are read from the log.
    a, b, _ = nodes
    subscriber = await _subscriber(b, "sizes")
    large = [{"data": f"L{i}" + "x" * 2000} for i in range(3)]
    await _publish(http, a, "sizes", {"data": "s0"})
    await _publish(http, a, "sizes", large)
    await _publish(http, a, "sizes", [{"data": "s1"}, {"data": "s2"}])
    received = await _received(subscriber, 6)
    assert _seqs(received) == list(range(1, 7))
    assert [m["data"][:2] for m in received] == ["s0", "L0", "L1", "L2", "s1", "s2"]
    await subscriber.close()


async def test_appends_through_two_nodes_reach_every_node_and_aggregate(
    nodes: list[Relay], http: aiohttp.ClientSession
) -> None:
    a, b, c = nodes
    subscriber = await _subscriber(c, "stream")
    (serial,) = (await _publish(http, a, "stream", {"data": ""}))["serials"]

    async def append(node: Relay, text: str) -> None:
        async with http.patch(
            f"{node.url}/channels/stream/messages/{quote(serial)}",
            json={"action": 5, "data": text},
            headers=HEADERS,
        ) as resp:
            assert resp.status == 200, await resp.text()

    for i in range(10):
        await asyncio.gather(append(a, f"a{i} "), append(b, f"b{i} "))
    received = await _received(subscriber, 21)
    assert _seqs(received) == list(range(1, 22))
    fragments = "".join(m["data"] for m in received[1:])
    aggregates = []
    for node in nodes:
        async with http.get(
            f"{node.url}/channels/stream/messages/{quote(serial)}", headers=HEADERS
        ) as resp:
            aggregates.append((await resp.json())["data"])
    assert aggregates == [fragments] * 3
    assert sorted(fragments.split()) == sorted(f"{n}{i}" for i in range(10) for n in "ab")
    await subscriber.close()


async def test_one_idempotent_publish_sent_to_two_nodes_is_stored_and_delivered_once(
    nodes: list[Relay], http: aiohttp.ClientSession
) -> None:
    a, b, c = nodes
    subscriber = await _subscriber(c, "idem")
    body = {"id": "order-42", "data": "once"}
    first, second = await asyncio.gather(
        _publish(http, a, "idem", body), _publish(http, b, "idem", body)
    )
    assert first["serials"] == second["serials"]
    await _publish(http, a, "idem", {"data": "after"})
    received = await _received(subscriber, 2)
    assert [m["data"] for m in received] == ["once", "after"]
    await subscriber.close()


async def test_a_lost_listen_connection_misses_nothing(
    nodes: list[Relay], http: aiohttp.ClientSession, postgres_url: str
) -> None:
    a, b, _ = nodes
    subscriber = await _subscriber(b, "lossy")
    await _publish(http, a, "lossy", {"data": "m0"})
    assert [m["data"] for m in await _received(subscriber, 1)] == ["m0"]
    # Every connection of the database's backends is cut: the nodes' listeners, writers and
    # pools alike. What is published meanwhile, and after, still arrives in order.
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid != pg_backend_pid()"
        )
    finally:
        await admin.close()
    published = ["m0"]
    for i in range(1, 20):
        try:
            await _publish(http, a, "lossy", {"id": f"lossy-{i}", "data": f"m{i}"})
        except AssertionError:
            # A publish in flight when its connection was cut is refused (never ACKed
            # without being durable); its idempotent retry is stored once.
            await _publish(http, a, "lossy", {"id": f"lossy-{i}", "data": f"m{i}"})
        published.append(f"m{i}")
    received = ["m0", *(m["data"] for m in await _received(subscriber, 19))]
    assert received == published
    await subscriber.close()


async def test_ephemeral_messages_reach_subscribers_on_other_nodes(
    nodes: list[Relay], http: aiohttp.ClientSession
) -> None:
    a, b, _ = nodes
    subscriber = await _subscriber(b, "typing")
    await _publish(http, a, "typing", {"name": "typing", "extras": {"ephemeral": True}})
    (message,) = await _received(subscriber, 1)
    assert message["name"] == "typing" and "serial" not in message
    await subscriber.close()


async def test_ephemeral_messages_too_large_to_notify_reach_other_nodes_in_publish_order(
    nodes: list[Relay], http: aiohttp.ClientSession
) -> None:
    a, b, _ = nodes
    subscriber = await _subscriber(b, "drafts")
    # Above the notification's payload limit, the message goes through a table: those after it
    # still arrive after it.
    sizes = [20_000, 10, 30_000, 10]
    for i, size in enumerate(sizes):
        await _publish(
            http, a, "drafts", {"name": f"e{i}", "data": "x" * size, "extras": {"ephemeral": True}}
        )
    received = await _received(subscriber, len(sizes))
    assert [(m["name"], len(m["data"])) for m in received] == [
        (f"e{i}", size) for i, size in enumerate(sizes)
    ]
    await subscriber.close()


async def test_a_message_published_through_one_node_can_be_annotated_at_once_through_another(
    nodes: list[Relay], http: aiohttp.ClientSession
) -> None:
    a, b, _ = nodes
    # A subscriber on B: B delivers A's messages once it has read them from the log, here
    # slowly (a loaded database), so after the publisher's annotation has reached B.
    subscriber = await _subscriber(b, "reviews")
    read_log = b.store.log_since

    async def slow_read(channel_id: int, after_seq: int, limit: int) -> list[LogEvent]:
        await asyncio.sleep(0.2)
        return await read_log(channel_id, after_seq, limit)

    b.store.log_since = slow_read  # type: ignore[method-assign]
    for i in range(10):
        (serial,) = (await _publish(http, a, "reviews", {"data": f"m{i}"}))["serials"]
        async with http.post(
            f"{b.url}/channels/reviews/messages/{quote(serial)}/annotations",
            json={"type": "views:total.v1"},
            headers=HEADERS,
        ) as resp:
            assert resp.status == 201, await resp.text()
            (annotation,) = (await resp.json())["serials"]
        assert annotation > serial
    # Every message, then its summary: B holds the summary until it has read the message from
    # the log.
    received = await _received(subscriber, 20)
    assert [m.get("data") for m in received[::2]] == [f"m{i}" for i in range(10)]
    for message, summary in zip(received[::2], received[1::2], strict=True):
        assert summary["serial"] == message["serial"]
        assert summary["annotations"]["summary"] == {"views:total.v1": {"total": 1}}
    await subscriber.close()
