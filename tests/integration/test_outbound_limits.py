"""What the relay sends, and how much it holds for clients that do not read: oversized frames
are refused with ERROR 40009; a subscriber too slow to keep up is disconnected with
DISCONNECTED 42915 as its last frame and nothing after the CLOSE; stalled subscribers together
never hold more than the relay-wide budget (max_outbound_total), while the publisher and a
healthy subscriber carry on; and a history page of big messages is bounded in bytes."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import websockets
from raw_client import ConnectRaw, RawClient, StalledSocket, connect_raw
from relay_support import APP_KEY as KEY
from relay_support import running_relay

from channel_relay.channels.history import PAGE_BYTES
from channel_relay.server import Relay

ACK, NACK, DISCONNECTED, ERROR, ATTACHED, MESSAGE = 1, 2, 6, 9, 11, 15
TEXT, CLOSE = 0x1, 0x8


@pytest.fixture
async def tight_relay(tmp_path: Path) -> AsyncIterator[Relay]:
    """A relay whose per-socket bound is 256 KiB and relay-wide bound 2 MiB."""
    async with running_relay(
        tmp_path, max_outbound_buffer=256 * 1024, max_outbound_total=2 * 1024 * 1024
    ) as server:
        yield server


async def _connect(relay: Relay, fmt: str = "json") -> RawClient:
    client, first = await connect_raw(relay.port, KEY, fmt)
    assert first["action"] == 4, first
    return client


async def _publish_until_acked(publisher: RawClient, channel: str, count: int, size: int) -> None:
    """Publish `count` messages of `size` bytes, a few in flight at a time, all ACKed."""
    for _ in range(count):
        serial = await publisher.publish(channel, [{"data": "x" * size}])
        reply = await publisher.recv_action(ACK, NACK, ERROR)
        assert (reply["action"], reply["msgSerial"]) == (ACK, serial), reply


@pytest.mark.usefixtures("no_tracebacks")
async def test_a_frame_over_twice_max_frame_size_fails_with_40009_not_a_bare_close(
    relay: Relay, raw: ConnectRaw, fmt: str
) -> None:
    client = await raw(fmt)
    bystander = await raw("json")
    await client.publish("big", [{"data": "x" * (relay.settings.max_frame_size * 3)}])
    error = await client.recv_action(ERROR, ACK, NACK)
    assert error["action"] == ERROR and "channel" not in error, error
    assert (error["error"]["code"], error["error"]["statusCode"]) == (40009, 413)
    with pytest.raises(websockets.ConnectionClosed):
        await client.recv_action(ERROR)
    assert (await bystander.attach("after"))["action"] == ATTACHED


@pytest.mark.usefixtures("no_tracebacks")
async def test_a_slow_consumer_gets_disconnected_42915_as_its_last_frame(
    tight_relay: Relay,
) -> None:
    slow = await StalledSocket.open(tight_relay.port, KEY)
    await slow.send({"action": 10, "channel": "firehose"})
    publisher = await _connect(tight_relay, "msgpack")
    # Enough to fill the kernel's buffers and then the relay's 256 KiB for this socket.
    await _publish_until_acked(publisher, "firehose", 300, 32 * 1024)

    frames = await slow.frames()
    slow.close()
    opcodes = [opcode for opcode, _ in frames]
    assert opcodes[-1] == CLOSE, "nothing may follow the CLOSE frame"
    assert opcodes.count(CLOSE) == 1
    last = json.loads(frames[-2][1])
    assert last["action"] == DISCONNECTED, last
    assert last["error"]["code"] == 42915 and last["error"]["statusCode"] == 429
    received = [json.loads(payload) for opcode, payload in frames[:-2] if opcode == TEXT]
    delivered = [m for frame in received if frame["action"] == MESSAGE for m in frame["messages"]]
    assert 0 < len(delivered) < 300, "it was disconnected part way, having received a prefix"


@pytest.mark.usefixtures("no_tracebacks")
async def test_twenty_stalled_subscribers_stay_under_the_relay_wide_budget(
    tight_relay: Relay,
) -> None:
    budget = tight_relay.settings.max_outbound_total
    stalled = [await StalledSocket.open(tight_relay.port, KEY, "msgpack") for _ in range(20)]
    for socket in stalled:
        await socket.send({"action": 10, "channel": "wide"})
    healthy = await _connect(tight_relay, "json")
    assert (await healthy.attach("wide"))["action"] == ATTACHED
    publisher = await _connect(tight_relay, "msgpack")

    peak = 0
    received: list[str] = []
    for index in range(200):
        serial = await publisher.publish("wide", [{"data": f"{index:04}" + "x" * 16 * 1024}])
        reply = await publisher.recv_action(ACK, NACK, ERROR)
        assert (reply["action"], reply["msgSerial"]) == (ACK, serial), reply
        peak = max(peak, tight_relay.realtime.outbound.total())
        assert peak <= budget, f"{peak} bytes queued, over the {budget} budget"
        message = await healthy.recv_action(MESSAGE)
        received.extend(m["data"][:4] for m in message["messages"])

    assert received == [f"{index:04}" for index in range(200)], "healthy: all, once, in order"
    assert tight_relay.metrics.slow_consumers._value.get() >= 1
    for socket in stalled:
        socket.close()


@pytest.mark.usefixtures("no_tracebacks")
async def test_a_history_page_of_big_messages_is_bounded_in_bytes_and_links_the_rest(
    relay: Relay,
) -> None:
    auth = {"Authorization": "Basic " + base64.b64encode(relay.default_key.encode()).decode()}
    size = relay.settings.max_message_size - 1024
    count = PAGE_BYTES // size + 20
    url = f"{relay.url}/channels/big/messages"
    async with aiohttp.ClientSession() as http:
        for index in range(count):
            body = {"name": f"{index:04}", "data": "x" * size}
            async with http.post(url, json=body, headers=auth) as resp:
                assert resp.status == 201, await resp.text()
        names: list[str] = []
        pages = 0
        next_url: str | None = f"{url}?limit=1000&direction=forwards"
        while next_url is not None:
            async with http.get(next_url, headers=auth) as resp:
                assert resp.status == 200
                page = await resp.json()
                link = resp.links.get("next")
            assert sum(len(m["data"]) for m in page) <= PAGE_BYTES
            names.extend(m["name"] for m in page)
            pages += 1
            next_url = str(resp.url.join(link["url"])) if link else None
    assert names == [f"{index:04}" for index in range(count)], "every message once, in order"
    assert pages >= 2


async def test_a_relay_failure_while_connecting_is_disconnected_50002_not_an_http_500(
    relay: Relay, raw: ConnectRaw, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    bystander = await raw("json")

    async def broken(*args: object) -> None:
        raise RuntimeError("store unavailable")

    monkeypatch.setattr(relay.realtime, "_resume_or_new", broken)
    client, first = await connect_raw(relay.port, relay.default_key, "msgpack")
    assert first["action"] == DISCONNECTED, first
    assert (first["error"]["code"], first["error"]["statusCode"]) == (50002, 500)
    with pytest.raises(websockets.ConnectionClosed):
        await client.recv()
    assert [r.getMessage() for r in caplog.records if r.exc_info] == [
        "serving a connection failed"
    ], "logged once, by the relay, not by aiohttp"
    monkeypatch.undo()
    assert (await bystander.attach("after"))["action"] == ATTACHED
