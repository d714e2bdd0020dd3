"""An ACK is a promise: every ACKed publish survives SIGKILL of the relay process, once, in order.

The relay runs as `python -m channel_relay serve` (a real process to kill); publishers are raw
protocol connections, so no node is needed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from continuity_support import RelayProcess, start_relay_process
from interop_support import RawClient, connect_raw, rest_history

KEY = "dura.key1:durasecret"


@pytest.fixture
async def relay_process(tmp_path: Path) -> AsyncIterator[list[RelayProcess]]:
    """Processes started by the test, all killed at teardown."""
    started: list[RelayProcess] = []
    yield started
    for relay in started:
        if relay.proc.returncode is None:
            relay.kill()
        await relay.proc.wait()


def _abort(client: RawClient) -> None:
    """Drop the TCP connection to a killed relay without a closing handshake: the client
    stopped reading mid-stream, so a close() would wait out websockets' close timeout."""
    client.ws.transport.abort()


async def _connect(port: int, channel: str) -> RawClient:
    client, connected = await connect_raw(port, KEY, "json")
    assert connected["action"] == 4, connected
    attached = await client.attach(channel)
    assert attached["action"] == 11, attached
    return client


async def _publish_all(
    client: RawClient, channel: str, count: int, stop_after_acks: int | None = None
) -> dict[int, str]:
    """Pipeline `count` single-message publishes; return {msgSerial: serial} of those ACKed.

    With `stop_after_acks`, return as soon as that many are ACKed (the rest still in flight).
    """
    for i in range(count):
        await client.publish(channel, [{"name": f"m{i}", "data": f"payload {i}"}])
    acked: dict[int, str] = {}
    async with asyncio.timeout(60):
        while len(acked) < count:
            reply = await client.recv_action(1, 2, within=30)
            assert reply["action"] == 1, f"publish refused: {reply}"
            first, n = reply["msgSerial"], reply.get("count", 1)
            res = reply.get("res") or []
            assert len(res) == n, f"ACK needs one res entry per ProtocolMessage: {reply}"
            for offset in range(n):
                [serial] = res[offset]["serials"]
                acked[first + offset] = serial
            if stop_after_acks is not None and len(acked) >= stop_after_acks:
                break
    return acked


async def test_every_acked_publish_survives_sigkill_once_and_in_order(
    tmp_path: Path, relay_process: list[RelayProcess]
) -> None:
    db = tmp_path / "durable.db"
    count = 500
    first = await start_relay_process(db, key=KEY)
    relay_process.append(first)
    client = await _connect(first.port, "durable")
    acked = await _publish_all(client, "durable", count)
    assert sorted(acked) == list(range(count))

    first.kill()
    await first.proc.wait()
    _abort(client)

    second = await start_relay_process(db, key=KEY)
    relay_process.append(second)
    items, _ = await rest_history(second.port, KEY, "durable", direction="forwards", limit="1000")
    assert [m["name"] for m in items] == [f"m{i}" for i in range(count)]
    assert [m["serial"] for m in items] == [acked[i] for i in range(count)]
    assert [m["data"] for m in items] == [f"payload {i}" for i in range(count)]


async def test_sigkill_mid_stream_loses_no_acked_publish_and_duplicates_none(
    tmp_path: Path, relay_process: list[RelayProcess]
) -> None:
    """Kill while publishes are still arriving: history is a gap-free prefix of what was sent
    that contains every ACKed message (unACKed ones may or may not have been committed)."""
    db = tmp_path / "midstream.db"
    count, kill_after = 3000, 300
    first = await start_relay_process(db, key=KEY)
    relay_process.append(first)
    client = await _connect(first.port, "midstream")
    acked = await _publish_all(client, "midstream", count, stop_after_acks=kill_after)
    first.kill()
    await first.proc.wait()
    _abort(client)

    second = await start_relay_process(db, key=KEY)
    relay_process.append(second)
    items, _ = await rest_history(second.port, KEY, "midstream", direction="forwards", limit="1000")
    names = [m["name"] for m in items]
    assert names == [f"m{i}" for i in range(len(names))], "history must be the sent order"
    assert len(names) >= len(acked), f"{len(acked)} ACKed but only {len(names)} survived"
    assert [m["serial"] for m in items[: len(acked)]] == [acked[i] for i in range(len(acked))]

    # The restarted relay continues the channel: a new publish sorts after everything.
    client = await _connect(second.port, "midstream")
    after = await _publish_all(client, "midstream", 1)
    await client.close()
    assert after[0] > items[-1]["serial"]
