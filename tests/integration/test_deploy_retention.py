"""The operator's promises about retention: per namespace, only what the rules say is removed,
history shows what is kept, a resume from before what is kept is not RESUMED (80006), serials
never go back, and the cleanup runs beside publishes without stalling them."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from raw_client import connect_raw

from channel_relay.auth.keys import ApiKey
from channel_relay.channels.rules import ChannelRules
from channel_relay.config import AppSettings, Settings
from channel_relay.protocol.actions import Flag
from channel_relay.protocol.serials import parse_serial
from channel_relay.server import Relay
from channel_relay.store.base import HistoryQuery

APP_KEY = "app1.key1:secret1"
ACK, ATTACHED, MESSAGE = 1, 11, 15


def _settings(db: Path) -> Settings:
    app = AppSettings(
        "app1",
        keys=[ApiKey.parse(APP_KEY)],
        namespaces={
            "short": ChannelRules(max_messages=5),
            "aged": ChannelRules(max_age_ms=60_000),
            "gone": ChannelRules(max_messages=0),
            "both": ChannelRules(max_age_ms=60_000, max_messages=3),
        },
    )
    # The background pass never runs by itself here: the tests run it when they choose.
    return Settings(
        host="127.0.0.1", port=0, db_path=str(db), apps=[app], retention_interval=3600.0
    )


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[Relay]:
    server = Relay(_settings(tmp_path / "relay.db"))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def _publish(relay: Relay, channel: str, count: int, per_batch: int = 1) -> list[str]:
    """Publish through the channel layer (as a connection does); the serials once durable."""
    live = await relay.channels.get("app1", channel)
    loop = asyncio.get_running_loop()
    futures = []
    for start in range(0, count, per_batch):
        future: asyncio.Future[list[str]] = loop.create_future()

        def done(serials: Any, error: Any, future: asyncio.Future[list[str]] = future) -> None:
            future.set_exception(error) if error else future.set_result(serials)

        messages = [{"data": f"m{i}"} for i in range(start, min(start + per_batch, count))]
        live.publish(messages, done)
        futures.append(future)
    return [s for batch in await asyncio.gather(*futures) for s in batch]


async def _history(relay: Relay, channel: str) -> list[str]:
    live = await relay.channels.get("app1", channel)
    rows = await relay.store.history(HistoryQuery(channel_id=live.log.channel_id, limit=1000))
    return [row.message["serial"] for row in reversed(rows)]


async def test_retention_removes_only_what_the_namespace_rules_say(relay: Relay) -> None:
    short = await _publish(relay, "short:a", 20)
    kept = await _publish(relay, "other:b", 20)
    plain = await _publish(relay, "nonamespace", 20)
    removed = await relay.retention.run_once()
    assert removed == 15
    assert await _history(relay, "short:a") == short[-5:]
    assert await _history(relay, "other:b") == kept
    assert await _history(relay, "nonamespace") == plain
    # A second pass finds nothing more to do.
    assert await relay.retention.run_once() == 0
    counted = relay.metrics.registry.get_sample_value("relay_retention_deleted_messages_total")
    assert counted == 15


async def test_max_age_removes_messages_older_than_it_and_keeps_the_rest(relay: Relay) -> None:
    old = await _publish(relay, "aged:c", 5)
    await asyncio.sleep(0.05)
    middle = int(time.time() * 1000)
    await asyncio.sleep(0.05)
    new = await _publish(relay, "aged:c", 5)
    # As if the clock had moved on so that `middle` is exactly max_age ago.
    assert await relay.retention.run_once(now_ms=middle + 60_000) == len(old)
    assert await _history(relay, "aged:c") == new
    # With both limits, whichever removes more wins.
    both = await _publish(relay, "both:d", 6)
    assert await relay.retention.run_once(now_ms=middle + 60_000) == 3
    assert await _history(relay, "both:d") == both[-3:]


async def test_an_emptied_channel_keeps_numbering_upwards_across_a_restart(
    tmp_path: Path,
) -> None:
    db = tmp_path / "relay.db"
    relay = Relay(_settings(db))
    await relay.start()
    try:
        serials = await _publish(relay, "gone:e", 10)
        assert await relay.retention.run_once() == 10
        assert await _history(relay, "gone:e") == []
    finally:
        await relay.stop()
    relay = Relay(_settings(db))
    await relay.start()
    try:
        live = await relay.channels.get("app1", "gone:e")
        assert live.log.last_seq == 10
        assert live.log.first_seq == 11
        (after,) = await _publish(relay, "gone:e", 1)
        assert parse_serial(after)[1] == 11  # type: ignore[index]
        assert after > serials[-1]
    finally:
        await relay.stop()


async def test_a_resume_from_before_what_is_kept_attaches_without_resumed_80006(
    relay: Relay,
) -> None:
    serials = await _publish(relay, "short:f", 12)
    await relay.retention.run_once()
    client, _ = await connect_raw(relay.port, APP_KEY, "json")
    try:
        # From a serial whose successors were removed: continuity is lost, and said so.
        await client.send({"action": 10, "channel": "short:f", "channelSerial": serials[2]})
        attached = await client.recv_action(ATTACHED)
        assert not attached["flags"] & Flag.RESUMED
        assert attached["error"]["code"] == 80006
        await client.send({"action": 12, "channel": "short:f"})
        await client.recv_action(13)
        # From the last removed one: everything after it is kept, so it resumes.
        await client.send({"action": 10, "channel": "short:f", "channelSerial": serials[6]})
        attached = await client.recv_action(ATTACHED)
        assert attached["flags"] & Flag.RESUMED
        replay = await client.recv_action(MESSAGE)
        assert [m["serial"] for m in replay["messages"]] == serials[7:]
    finally:
        await client.close()


async def test_retention_of_a_large_channel_does_not_stall_publishes(relay: Relay) -> None:
    """Measured: ACK latency of a steady publisher while 60,000 messages are removed."""
    await _publish(relay, "short:big", 60_000, per_batch=500)
    client, _ = await connect_raw(relay.port, APP_KEY, "msgpack")
    latencies: list[float] = []

    async def publish_steadily(stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            await client.publish("other:live", [{"data": "x"}])
            await client.recv_action(ACK)
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.002)

    try:
        stop = asyncio.Event()
        baseline_task = asyncio.create_task(publish_steadily(stop))
        await asyncio.sleep(0.3)
        stop.set()
        await baseline_task
        baseline = list(latencies)
        latencies.clear()
        stop = asyncio.Event()
        task = asyncio.create_task(publish_steadily(stop))
        started = time.perf_counter()
        removed = await relay.retention.run_once()
        took = time.perf_counter() - started
        stop.set()
        await task
    finally:
        await client.close()
    assert removed == 60_000 - 5
    during = sorted(latencies)
    p99 = during[int(len(during) * 0.99) - 1]
    print(
        f"\nretention removed {removed} messages in {took:.2f} s; ACK latency of a steady "
        f"publisher: baseline median {statistics.median(baseline) * 1000:.2f} ms, during "
        f"median {statistics.median(during) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, "
        f"max {during[-1] * 1000:.2f} ms over {len(during)} publishes"
    )
    assert len(during) >= 10
    # One small delete at a time: a publish never waits for the whole cleanup.
    assert during[-1] < max(0.25, took / 4)
