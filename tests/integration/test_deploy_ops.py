"""The operator's promises about watching the relay: /healthz, /readyz, /metrics (Prometheus
text format, counters moving with traffic), limits that refuse with Ably's codes, JSON logs."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from raw_client import connect_raw
from relay_support import APP_KEY, running_relay

from channel_relay.logs import JsonFormatter
from channel_relay.server import Relay

ACK, NACK, ERROR, MESSAGE = 1, 2, 9, 15


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[Relay]:
    async with running_relay(tmp_path, max_connections=3, max_inbound_rate=20) as server:
        yield server


async def _get(relay: Relay, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{relay.port}{path}") as resp,
    ):
        return resp.status, await resp.text()


async def _metrics(relay: Relay) -> dict[str, float]:
    """Every sample of /metrics as "name{label=value,...}" -> value."""
    status, text = await _get(relay, "/metrics")
    assert status == 200
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


async def test_healthz_and_readyz_answer_200_while_serving(relay: Relay) -> None:
    assert await _get(relay, "/healthz") == (200, json.dumps({"status": "ok"}))
    status, body = await _get(relay, "/readyz")
    assert (status, json.loads(body)) == (200, {"status": "ready"})


async def test_readyz_is_503_once_shutdown_begins_and_when_the_database_cannot_write(
    relay: Relay,
) -> None:
    relay.accepting = False
    status, body = await _get(relay, "/readyz")
    assert (status, json.loads(body)["reason"]) == (503, "shutting down")
    relay.accepting = True

    async def broken(size: int = 0) -> None:
        raise OSError("disk full")

    relay.store.ping = broken  # type: ignore[method-assign]
    status, body = await _get(relay, "/readyz")
    assert status == 503
    assert "disk full" in json.loads(body)["reason"]


async def test_readyz_probes_in_a_row_make_one_database_write(relay: Relay) -> None:
    assert (await _get(relay, "/readyz"))[0] == 200
    written = await relay.store.get_setting("ready_check")
    assert written is not None
    for _ in range(5):
        assert (await _get(relay, "/readyz"))[0] == 200
    assert await relay.store.get_setting("ready_check") == written


async def test_metrics_parse_and_count_publishes_deliveries_acks_and_commits(
    relay: Relay,
) -> None:
    before = await _metrics(relay)
    assert before["relay_connections"] == 0
    subscriber, _ = await connect_raw(relay.port, APP_KEY, "msgpack")
    publisher, _ = await connect_raw(relay.port, APP_KEY, "json")
    try:
        assert (await subscriber.attach("metered"))["action"] == 11
        for index in range(5):
            await publisher.publish("metered", [{"data": f"m{index}"}, {"data": "x"}])
            assert (await publisher.recv_action(ACK, NACK))["action"] == ACK
        for _ in range(5):
            await subscriber.recv_action(MESSAGE)
        after = await _metrics(relay)
    finally:
        await subscriber.close()
        await publisher.close()
    assert after["relay_connections"] == 2
    assert after["relay_channels"] >= 1
    assert after["relay_messages_published_total"] - before["relay_messages_published_total"] == 10
    assert after["relay_deliveries_total"] - before["relay_deliveries_total"] == 5
    assert after["relay_ack_latency_seconds_count"] - before["relay_ack_latency_seconds_count"] == 5
    assert after["relay_store_commit_batch_size_count"] >= 5
    assert after["relay_store_commit_seconds_sum"] > 0
    assert after["relay_info{version=0.1.0}"] == 1


async def test_a_blocked_event_loop_shows_in_the_loop_lag_metric(relay: Relay) -> None:
    await asyncio.sleep(0.3)  # the probe has run at least once, and the loop was idle
    before = await _metrics(relay)
    assert before["relay_event_loop_lag_seconds_count"] >= 1
    assert before["relay_event_loop_lag_seconds_sum"] < 0.1
    # Whatever runs on the loop delays everything else on it: here, 0.6 s of it at once, so a
    # probe due in its first 0.25 s runs at least 0.35 s late.
    time.sleep(0.6)  # noqa: ASYNC251
    await asyncio.sleep(0.3)
    after = await _metrics(relay)
    late = after["relay_event_loop_lag_seconds_sum"] - before["relay_event_loop_lag_seconds_sum"]
    assert late >= 0.35
    within_quarter = (
        after["relay_event_loop_lag_seconds_bucket{le=0.25}"]
        - before["relay_event_loop_lag_seconds_bucket{le=0.25}"]
    )
    observed = (
        after["relay_event_loop_lag_seconds_count"] - before["relay_event_loop_lag_seconds_count"]
    )
    assert observed - within_quarter >= 1


async def test_auth_failures_are_counted_by_code(relay: Relay) -> None:
    client, first = await connect_raw(relay.port, "app1.key1:wrong", "json")
    await client.close()
    assert first["action"] == ERROR and first["error"]["code"] == 40101
    status, _ = await _get(relay, "/channels/x/messages")
    assert status == 401
    samples = await _metrics(relay)
    assert samples["relay_auth_failures_total{code=40101}"] >= 1
    assert sum(v for k, v in samples.items() if k.startswith("relay_auth_failures_total")) == 2


async def test_resume_outcomes_are_counted(relay: Relay) -> None:
    # Of the relay's shape, naming a connection it does not hold (as after a restart).
    gone = "abcdefghijklmnop!gone0000000"
    client, connected = await connect_raw(relay.port, APP_KEY, "json", resume=gone)
    await client.close()
    assert connected["error"]["code"] == 80008
    samples = await _metrics(relay)
    assert samples["relay_connection_resumes_total{outcome=expired}"] == 1


async def test_past_max_connections_a_new_connection_gets_error_40150(relay: Relay) -> None:
    clients = [(await connect_raw(relay.port, APP_KEY, "json"))[0] for _ in range(3)]
    try:
        extra, first = await connect_raw(relay.port, APP_KEY, "json")
        await extra.close()
        assert first["action"] == ERROR
        assert first["error"]["code"] == 40150
        samples = await _metrics(relay)
        assert samples["relay_connections_refused_total{code=40150}"] == 1
    finally:
        for client in clients:
            await client.close()
    await asyncio.sleep(0.1)
    again, first = await connect_raw(relay.port, APP_KEY, "json")
    await again.close()
    assert first["action"] == 4


async def test_past_max_inbound_rate_publishes_are_nacked_42911(relay: Relay) -> None:
    client, _ = await connect_raw(relay.port, APP_KEY, "json")
    try:
        outcomes = []
        for _ in range(30):  # 30 messages well inside one second; the limit is 20/s
            await client.publish("busy", [{"data": "x"}])
        # ACKs may be coalesced ({"count": n}); NACKs carry the code. Count what each covers.
        while len(outcomes) < 30:
            reply = await client.recv_action(ACK, NACK)
            outcome = reply["action"] if reply["action"] == ACK else reply["error"]["code"]
            outcomes.extend([outcome] * reply.get("count", 1))
        assert 42911 in outcomes
        assert outcomes[0] == ACK
        samples = await _metrics(relay)
        assert samples["relay_rate_limited_publishes_total"] >= 1
    finally:
        await client.close()


def test_json_logs_carry_connection_and_channel_ids() -> None:
    record = logging.LogRecord("relay.x", logging.WARNING, __file__, 1, "slow %s", ("c1",), None)
    record.connection_id = "c1"
    record.channel = "room"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["msg"] == "slow c1"
    assert (entry["connection_id"], entry["channel"], entry["level"]) == ("c1", "room", "WARNING")
    assert entry["ts"].endswith("Z")
