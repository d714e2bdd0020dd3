"""Continuity (issue 4): a client that drops mid-stream comes back and continues exactly where it
left off, with nothing missed and nothing twice, driving the unmodified ably-js where it matters.

Coordination with node is by the `EVENT` lines scripts/continuity_stream.mjs prints (messages
received, publishes ACKed, connection states) and by polling the relay's own state, not by sleeps.
Helpers (proxy, relay processes, the SDK-like raw client) are in continuity_support.py.

How the publisher survives a relay restart (tests 3 and 9): after a failed resume ably-js resends
its unACKed publishes with NEW msgSerials (RTN19a2), so the relay cannot recognise them by
msgSerial. The script therefore publishes every message with an explicit id `<run>:<i>` and
retries a publish that fails with the same id: the relay's idempotent publishing stores each id
once and answers a retry with the original serial.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
from continuity_support import (
    ACK,
    ATTACHED,
    KEY,
    MESSAGE,
    NACK,
    RESUMED,
    NodeProcess,
    RelayProcess,
    SdkLikeClient,
    StartProxy,
    find_connection,
    free_port,
    in_process_relay,
    start_relay_process,
)
from interop_support import ConnectRaw, RawClient, connect_raw, rest_history

from channel_relay.server import Relay

# ably-js through both engines (tests/conftest.py).
ENGINES = ["sqlite", "postgresql"]

STREAM = "continuity_stream.mjs"
FAST_RETRY = {"disconnectedRetryTimeout": 500, "suspendedRetryTimeout": 500}


@pytest.fixture
async def relays() -> AsyncIterator[list[Relay]]:
    """In-process relays a test starts itself (custom settings, restarts); stopped at teardown."""
    made: list[Relay] = []
    yield made
    for relay in made:
        await relay.stop()


async def _stream(
    nodes: list[NodeProcess], port: int, deadline: float = 45.0, **args: Any
) -> NodeProcess:
    node = await NodeProcess.start(STREAM, port=port, args=args, deadline=deadline)
    nodes.append(node)
    return node


def _assert_exactly_in_order(result: dict[str, Any], count: int) -> None:
    names = [m["name"] for m in result["received"]]
    missing = sorted(set(range(count)) - {int(n[1:]) for n in names})
    assert names == [f"m{i}" for i in range(count)], (
        f"{len(names)} received, {len(names) - len(set(names))} duplicates, missing {missing[:20]}"
    )
    serials = [m["serial"] for m in result["received"]]
    assert serials == sorted(serials) and len(set(serials)) == count


async def _wait_for(predicate: Callable[[], bool], within: float, what: str) -> None:
    """Poll relay-side state (or anything else cheap) every 2 ms until `predicate` holds."""
    try:
        async with asyncio.timeout(within):
            while True:
                if predicate():
                    return
                await asyncio.sleep(0.002)
    except TimeoutError:
        raise AssertionError(f"timed out after {within} s waiting for {what}") from None


def _state_events(node: NodeProcess, who: str, current: str) -> list[dict[str, Any]]:
    return [
        e
        for e in node.events
        if e.get("ev") == "state" and e["who"] == who and e["current"] == current
    ]


# 1. Relay-side socket drops mid-stream.


async def test_subscriber_and_publisher_socket_drops_lose_and_duplicate_nothing(
    relay: Relay, nodes: list[NodeProcess]
) -> None:
    count = 1000
    node = await _stream(
        nodes,
        relay.port,
        channel="drops",
        count=count,
        inFlight=50,
        pauseMs=300,
        subOptions=FAST_RETRY,
        pubOptions=FAST_RETRY,
    )
    await node.wait_event(lambda e: e.get("ev") == "ready")
    drops = {"sub": 0, "pub": 0}
    mid_stream: list[bool] = []

    async def drop(who: str, *, at: int, right_after_reconnect: bool = False) -> None:
        await node.wait_progress("acked", at)
        before = len(_state_events(node, who, "connected"))
        connection = find_connection(relay, who)
        assert connection is not None and connection.writer is not None
        connection.writer.abort()
        drops[who] += 1
        if right_after_reconnect:
            # Drop again as soon as the subscriber has re-attached (the replay of what it
            # missed is under way) or the publisher's new socket is up (resends under way).
            await _wait_for(
                lambda: (
                    connection.writer is not None and (who == "pub" or bool(connection.attachments))
                ),
                10,
                f"{who} back",
            )
            connection.writer.abort()
            drops[who] += 1
        await node.wait_event(lambda e: len(_state_events(node, who, "connected")) > before)
        await _wait_for(
            lambda: connection.writer is not None or node.result is not None, 15, "back"
        )
        mid_stream.append(node.progress("recv") < count)

    await drop("sub", at=150)
    await drop("pub", at=300)
    await drop("sub", at=450, right_after_reconnect=True)
    await drop("pub", at=600, right_after_reconnect=True)
    await drop("sub", at=750)
    result = await node.finish(within=40)
    assert all(mid_stream), f"the stream ended before every drop: {mid_stream}"

    _assert_exactly_in_order(result, count)
    # Resumed every time: one connection id throughout, no error on any reconnect.
    assert result["lastId"] == result["firstId"]
    for who in ("sub", "pub"):
        reconnects = _state_events(node, who, "connected")[1:]
        assert len(reconnects) >= 1, f"{who} never reconnected"
        assert {e["id"] for e in _state_events(node, who, "connected")} == {
            _state_events(node, who, "connected")[0]["id"]
        }, f"{who} got a new connectionId: {reconnects}"
        assert all(e["reason"] is None or e["reason"]["code"] == 80003 for e in reconnects), (
            reconnects
        )
    # Every publish ACKed with the serial the subscriber saw.
    assert result["acked"] == [m["serial"] for m in result["received"]]


# 2. A black-holed TCP path.


async def test_black_holed_connection_is_detected_and_resumed_without_loss(
    tmp_path: Path, relays: list[Relay], proxies: StartProxy, nodes: list[NodeProcess]
) -> None:
    relay = in_process_relay(0, tmp_path / "bh.db", idle_ms=1500)
    relays.append(relay)
    await relay.start()
    proxy = await proxies(relay.port)
    count = 1000
    sub_options = {**FAST_RETRY, "realtimeRequestTimeout": 2000}
    node = await _stream(
        nodes,
        relay.port,
        channel="blackhole",
        count=count,
        inFlight=50,
        pauseMs=60,
        subPort=proxy.port,
        subOptions=sub_options,
    )
    await node.wait_progress("recv", 200)
    assert proxy.black_hole() == 1
    # ably-js notices the silence (maxIdleInterval + realtimeRequestTimeout) and reconnects.
    await node.wait_event(
        lambda e: e.get("ev") == "state" and e["who"] == "sub" and e["current"] == "disconnected",
        within=15,
    )
    result = await node.finish(within=40)
    _assert_exactly_in_order(result, count)
    assert proxy.accepted >= 2
    assert result["lastId"] == result["firstId"], "the reconnect through the proxy must resume"
    disconnected = _state_events(node, "sub", "disconnected")[0]
    assert disconnected["reason"]["code"] == 80003, disconnected


# 3. SIGKILL and restart.


@pytest.mark.parametrize("explicit_ids", [True, False], ids=["client-ids", "no-ids"])
async def test_sigkill_and_restart_loses_no_acked_message_and_duplicates_none(
    tmp_path: Path, processes: list[RelayProcess], nodes: list[NodeProcess], explicit_ids: bool
) -> None:
    """The connections resume on the restarted relay (same connectionId, RESUMED: their state
    is in the store), and the publishes ably-js resends are stored once even without
    client-supplied ids (the relay keeps the ids it generates from connectionId:msgSerial)."""
    port, db = free_port(), tmp_path / "killed.db"
    processes.append(await start_relay_process(db, port))
    count = 600
    node = await _stream(
        nodes,
        port,
        deadline=60,
        channel="killed",
        count=count,
        inFlight=50,
        pauseMs=20,
        explicitIds=explicit_ids,
        subOptions=FAST_RETRY,
        pubOptions=FAST_RETRY,
    )
    await node.wait_progress("acked", 250)
    processes[-1].kill()
    await processes[-1].proc.wait()
    await node.wait_event(
        lambda e: e.get("ev") == "state" and e["who"] == "sub" and e["current"] == "disconnected"
    )
    processes.append(await start_relay_process(db, port))
    result = await node.finish(within=50)

    _assert_exactly_in_order(result, count)
    assert None not in result["acked"]
    items, _ = await rest_history(port, KEY, "killed", direction="forwards", limit="1000")
    log = [m for m in items if m["name"] != "end"]
    assert [m["name"] for m in log] == [f"m{i}" for i in range(count)], "stored exactly once"
    assert [m["serial"] for m in log] == [m["serial"] for m in result["received"]]
    assert result["acked"] == [m["serial"] for m in log]
    # Both connections resumed on the restarted relay, with their connectionIds.
    for who in ("sub", "pub"):
        connects = _state_events(node, who, "connected")
        assert len(connects) >= 2, connects
        assert {e["id"] for e in connects} == {connects[0]["id"]}, connects
        assert connects[-1]["reason"] is None, connects[-1]
    assert result["lastId"] == result["firstId"]
    assert not [e for e in node.events if e.get("ev") == "puberr"]


async def test_a_publish_stored_before_a_crash_and_resent_after_it_is_acked_once_stored_once(
    tmp_path: Path, processes: list[RelayProcess]
) -> None:
    """The ACK a publish was owed died with the relay: the client resumes the same connection
    on the restarted relay and resends it with the same msgSerial, as an SDK does; it gets the
    serial the message was stored under, and the message is stored once."""
    port, db = free_port(), tmp_path / "crash.db"
    processes.append(await start_relay_process(db, port))
    client, connected = await connect_raw(port, KEY, "json")
    connection_id = connected["connectionId"]
    key = connected["connectionDetails"]["connectionKey"]
    await client.attach("crash")
    frame = {"action": MESSAGE, "channel": "crash", "msgSerial": 0, "messages": [{"data": "x"}]}
    await client.send(frame)
    # Durable before the crash; the client never reads the ACK.
    await _wait_for_history(port, "crash", 1)
    processes[-1].kill()
    await processes[-1].proc.wait()
    client.ws.transport.abort()
    processes.append(await start_relay_process(db, port))

    resumed, reconnected = await connect_raw(port, KEY, "json", resume=key)
    try:
        assert reconnected["connectionId"] == connection_id
        assert "error" not in reconnected, reconnected
        await resumed.send(frame)
        ack = await resumed.recv_action(ACK, NACK)
        assert ack["action"] == ACK, ack
        (serial,) = ack["res"][0]["serials"]
    finally:
        await resumed.close()
    items, _ = await rest_history(port, KEY, "crash")
    assert [m["serial"] for m in items] == [serial]


# 4. A resume after connectionStateTtl.


async def test_resume_after_ttl_reports_80008_and_channel_still_catches_up(
    tmp_path: Path, relays: list[Relay], proxies: StartProxy, nodes: list[NodeProcess]
) -> None:
    relay = in_process_relay(0, tmp_path / "ttl.db", ttl_ms=1000, idle_ms=300)
    relays.append(relay)
    await relay.start()
    proxy = await proxies(relay.port)
    count = 400
    node = await _stream(
        nodes,
        relay.port,
        channel="ttl",
        count=count,
        inFlight=20,
        pauseMs=30,
        subPort=proxy.port,
        subOptions=FAST_RETRY,
    )
    await node.wait_progress("recv", 100)
    sub = find_connection(relay, "sub")
    assert sub is not None and sub.writer is not None
    old_id = sub.connection_id
    proxy.refuse = True
    sub.writer.abort()
    # Kept away until the relay has forgotten the connection (ticks every maxIdleInterval/3).
    await _wait_for(lambda: old_id not in relay.realtime.connections, 10, "expiry")
    proxy.refuse = False
    result = await node.finish(within=40)

    _assert_exactly_in_order(result, count)
    assert result["firstId"] == old_id and result["lastId"] != old_id
    reconnect = _state_events(node, "sub", "connected")[-1]
    assert reconnect["id"] == result["lastId"]
    assert reconnect["reason"] is not None and reconnect["reason"]["code"] == 80008, reconnect
    assert reconnect["errorReason"] is not None and reconnect["errorReason"]["code"] == 80008


# 5. ATTACH with a channelSerial (raw protocol).


async def _publish_many(client: RawClient, channel: str, frames: int, per_frame: int) -> None:
    for f in range(frames):
        await client.publish(
            channel, [{"name": f"h{f * per_frame + i}", "data": "x"} for i in range(per_frame)]
        )
    acked = 0
    while acked < frames:
        reply = await client.recv_action(ACK, NACK, within=20)
        assert reply["action"] == ACK, reply
        acked += reply.get("count", 1)


async def _attach_with(client: RawClient, channel: str, serial: str) -> dict[str, Any]:
    await client.send({"action": 10, "channel": channel, "channelSerial": serial})
    return await client.recv_action(ATTACHED, 9, within=10)


async def test_attach_from_channel_serial_replays_exactly_the_rest_then_goes_live(
    relay: Relay, raw: ConnectRaw
) -> None:
    channel = "replayed"
    publisher = await raw("msgpack")
    await _publish_many(publisher, channel, frames=30, per_frame=100)
    log, _ = await rest_history(relay.port, KEY, channel, direction="forwards", limit="1000")
    assert len(log) == 3000
    epoch = log[0]["serial"].rpartition("-")[0]

    probe = await raw("json")
    for serial, code in (
        ("not-a-serial", 80012),
        ("zzzzzzzzzzzz-0000000000000005", 80006),
        (f"{epoch}-{99_999_999:016d}", 80006),
    ):
        attached = await _attach_with(probe, channel, serial)
        assert attached["action"] == ATTACHED, attached
        assert not attached.get("flags", 0) & RESUMED, attached
        assert attached["error"]["code"] == code, attached
        assert attached["channelSerial"] == log[-1]["serial"]

    # A valid serial: RESUMED, the 2,900 after it, and the live ones published meanwhile.
    subscriber = await raw("msgpack")
    live = 300
    live_publisher = await raw("json")
    start = log[99]["serial"]

    async def publish_live() -> None:
        for i in range(live):
            await live_publisher.publish(channel, [{"name": f"live{i}", "data": "y"}])
            if i % 20 == 0:
                await asyncio.sleep(0.001)

    publishing = asyncio.create_task(publish_live())
    attached = await _attach_with(subscriber, channel, start)
    assert attached["action"] == ATTACHED and attached["flags"] & RESUMED, attached
    assert "error" not in attached
    # The serial an SDK stores from this ATTACHED must not skip the replay that follows.
    assert attached["channelSerial"] == start
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(30):
        while len(got) < 2900 + live:
            message = await subscriber.recv_action(MESSAGE, within=20)
            assert message["messages"][-1]["serial"] == message["channelSerial"]
            got.extend(message["messages"])
    await publishing
    full, _ = await rest_history(relay.port, KEY, channel, direction="forwards", limit="1000")
    assert [m["serial"] for m in got] == [m["serial"] for m in full[100:]]
    assert [m["name"] for m in got[:2900]] == [f"h{i}" for i in range(100, 3000)]
    assert [m["name"] for m in got[2900:]] == [f"live{i}" for i in range(live)]
    for client in (publisher, probe, subscriber, live_publisher):
        client.ws.transport.abort()  # unread deliveries would slow a polite close


# 6. rewind.


async def test_rewind_gives_the_recent_messages_then_live(
    relay: Relay, raw: ConnectRaw, nodes: list[NodeProcess]
) -> None:
    publisher = await raw("json")
    for i in range(10):
        await publisher.publish("rewound", [{"name": f"r{i}", "data": "x"}])
    acked = 0
    while acked < 10:
        acked += (await publisher.recv_action(ACK, within=10)).get("count", 1)
    node = await NodeProcess.start(
        "continuity_rewind.mjs",
        port=relay.port,
        args={"channel": "rewound", "liveChannel": "rewound-bad"},
        deadline=30,
    )
    nodes.append(node)
    result = await node.finish(within=30)
    assert result["byCount"] == ["r7", "r8", "r9", "live0", "live1"]
    assert result["byTime"] == [f"r{i}" for i in range(10)] + ["live0", "live1"]
    assert result["attachError"]["code"] == 40003, result
    assert result["badState"] == "failed"


# 7. untilAttach for a late joiner.


async def test_late_joiner_history_until_attach_plus_live_is_every_message_once(
    relay: Relay, nodes: list[NodeProcess]
) -> None:
    count = 300
    node = await NodeProcess.start(
        "continuity_until_attach.mjs",
        port=relay.port,
        args={"channel": "late", "count": count, "joinAfter": 100, "inFlight": 5},
        deadline=40,
    )
    nodes.append(node)
    result = await node.finish(within=40)
    combined = result["history"] + result["live"]
    assert combined == [f"m{i}" for i in range(count)], (
        f"history {len(result['history'])} + live {len(result['live'])}"
    )
    assert len(result["history"]) >= 100 and result["live"], "the join must be mid-stream"
    assert result["pages"] >= 20


# 8. Resent publishes after a resume.


async def test_resent_publishes_after_resume_are_acked_once_with_original_serials(
    relay: Relay,
) -> None:
    client, connected = await connect_raw(relay.port, KEY, "msgpack")
    connection_id = connected["connectionId"]
    key = connected["connectionDetails"]["connectionKey"]
    frames = [
        msgpack.packb(
            {
                "action": MESSAGE,
                "channel": "resent",
                "msgSerial": s,
                "messages": [{"name": f"p{s}", "data": f"d{s}"}],
            }
        )
        for s in range(10)
    ]
    for frame in frames:
        await client.send_raw(frame)
    # Every publish received and committed (history), then the socket dies unread.
    await _wait_for_history(relay.port, "resent", 10)
    connection = relay.realtime.connections[connection_id]
    client.ws.transport.abort()
    await _wait_for(lambda: connection.writer is None, 5, "relay sees the drop")

    again, reconnected = await connect_raw(relay.port, KEY, "msgpack", resume=key)
    assert reconnected["action"] == 4 and "error" not in reconnected, reconnected
    assert reconnected["connectionId"] == connection_id
    assert reconnected["connectionDetails"]["connectionKey"] != key
    for frame in frames:
        await again.send_raw(frame)
    acks: dict[int, list[str]] = {}
    while len(acks) < 10:
        reply = await again.recv_action(ACK, NACK, within=5)
        assert reply["action"] == ACK, reply
        for offset, res in enumerate(reply["res"]):
            serial = reply["msgSerial"] + offset
            assert serial not in acks, f"msgSerial {serial} acknowledged twice"
            acks[serial] = res["serials"]
    history, _ = await rest_history(relay.port, KEY, "resent", direction="forwards")
    assert [m["name"] for m in history] == [f"p{s}" for s in range(10)]
    assert [acks[s] for s in range(10)] == [[m["serial"]] for m in history]
    # Nothing more is acknowledged, and the next msgSerial is a new publish.
    await again.send(
        {"action": MESSAGE, "channel": "resent", "msgSerial": 10, "messages": [{"name": "p10"}]}
    )
    reply = await again.recv_action(ACK, NACK, within=5)
    assert reply["action"] == ACK and reply["msgSerial"] == 10, reply
    await again.close()


async def test_resent_publishes_answer_finished_ones_at_once_and_in_order_while_others_commit(
    relay: Relay,
) -> None:
    """msgSerials 0-4 committed, 5-9 still committing when the socket drops: after the resume
    the resent 0-4 are answered at once, and every reply leaves in msgSerial order (ably-js
    pairs ACK `res` entries with its queue from the head)."""
    held: list[Any] = []
    hold = asyncio.Event()
    submit = relay.store.submit

    def holding_submit(batch: Any) -> None:
        names = [m.get("name") for m in getattr(batch, "messages", ())]
        if hold.is_set() and any(str(n).startswith("q") for n in names):
            held.append(batch)
        else:
            submit(batch)

    relay.store.submit = holding_submit  # type: ignore[method-assign]
    client, connected = await connect_raw(relay.port, KEY, "msgpack")
    connection_id = connected["connectionId"]
    key = connected["connectionDetails"]["connectionKey"]
    frames = [
        msgpack.packb(
            {
                "action": MESSAGE,
                "channel": "held",
                "msgSerial": s,
                "messages": [{"name": f"q{s}", "data": f"d{s}"}],
            }
        )
        for s in range(10)
    ]
    for frame in frames[:5]:
        await client.send_raw(frame)
    await _wait_for_history(relay.port, "held", 5)
    hold.set()
    for frame in frames[5:]:
        await client.send_raw(frame)
    await _wait_for(lambda: len(held) == 5, 5, "5 commits held")
    connection = relay.realtime.connections[connection_id]
    client.ws.transport.abort()
    await _wait_for(lambda: connection.writer is None, 5, "relay sees the drop")

    again, reconnected = await connect_raw(relay.port, KEY, "msgpack", resume=key)
    assert reconnected["connectionId"] == connection_id and "error" not in reconnected
    for frame in frames:
        await again.send_raw(frame)
    order: list[int] = []
    while len(order) < 5:
        reply = await again.recv_action(ACK, NACK, within=5)
        order.extend(reply["msgSerial"] + i for i in range(reply.get("count", 1)))
    assert order == [0, 1, 2, 3, 4], "finished publishes must not wait behind unfinished ones"
    relay.store.submit = submit  # type: ignore[method-assign]
    for batch in held:
        submit(batch)
    while len(order) < 10:
        reply = await again.recv_action(ACK, NACK, within=5)
        order.extend(reply["msgSerial"] + i for i in range(reply.get("count", 1)))
    assert order == list(range(10))
    history, _ = await rest_history(relay.port, KEY, "held", direction="forwards")
    assert [m["name"] for m in history] == [f"q{s}" for s in range(10)]
    again.ws.transport.abort()


async def _wait_for_history(port: int, channel: str, count: int) -> None:
    async with asyncio.timeout(5):
        while True:
            items, _ = await rest_history(port, KEY, channel)
            if len(items) >= count:
                return
            await asyncio.sleep(0.02)


# 9. Server-initiated DISCONNECTED.


async def test_graceful_shutdown_disconnects_and_clients_continue_on_the_restarted_relay(
    tmp_path: Path, relays: list[Relay], nodes: list[NodeProcess]
) -> None:
    port, db = free_port(), tmp_path / "graceful.db"
    first = in_process_relay(port, db)
    relays.append(first)
    await first.start()
    count = 600
    node = await _stream(
        nodes,
        port,
        channel="graceful",
        count=count,
        inFlight=50,
        pauseMs=20,
        explicitIds=True,
        subOptions=FAST_RETRY,
        pubOptions=FAST_RETRY,
    )
    await node.wait_progress("acked", 250)
    await first.stop()
    relays.remove(first)
    second = in_process_relay(port, db)
    relays.append(second)
    await second.start()
    result = await node.finish(within=40)

    _assert_exactly_in_order(result, count)
    disconnected = _state_events(node, "sub", "disconnected")
    assert disconnected and disconnected[0]["reason"]["code"] == 80003, disconnected
    assert _state_events(node, "sub", "connected")[-1]["id"] == result["lastId"]
    items, _ = await rest_history(port, KEY, "graceful", direction="forwards", limit="1000")
    assert [m["name"] for m in items if m["name"] != "end"] == [f"m{i}" for i in range(count)]


# 10. Randomized: drops, restarts, attaches, publishes.


SEEDS = [11, 23, 47]


@pytest.mark.parametrize("seed", SEEDS)
async def test_randomized_drops_and_restarts_keep_every_subscriber_gap_and_duplicate_free(
    seed: int, tmp_path: Path, relays: list[Relay]
) -> None:
    rng = random.Random(seed)
    port, db = free_port(), tmp_path / "random.db"
    relays.append(in_process_relay(port, db))
    await relays[-1].start()
    channels = ["r-a", "r-b"]
    publisher = SdkLikeClient(port, "pub")
    subscribers = [SdkLikeClient(port, f"s{i}") for i in range(3)]
    everyone = [publisher, *subscribers]
    for client in everyone:
        await client.connect()
    for sub in subscribers:
        for channel in channels:
            if rng.random() < 0.7:
                await sub.attach(channel)
    published = drops = restarts = 0

    async def reconnect_all() -> None:
        for client in everyone:
            if not client.connected:
                await client.drop()
                await client.connect()

    for _ in range(60):
        roll = rng.random()
        if roll < 0.45:
            channel = rng.choice(channels)
            for _ in range(rng.randint(1, 25)):
                await publisher.publish(channel, f"x{published}")
                published += 1
        elif roll < 0.65:
            victim = rng.choice(everyone)
            await victim.drop()
            drops += 1
            if rng.random() < 0.5:
                await asyncio.sleep(rng.random() * 0.05)
        elif roll < 0.72:
            old = relays.pop()
            await old.stop()
            relays.append(in_process_relay(port, db))
            await relays[-1].start()
            restarts += 1
        elif roll < 0.86:
            sub, channel = rng.choice(subscribers), rng.choice(channels)
            if channel in sub.channel_serials:
                await sub.detach(channel)
            else:
                await sub.attach(channel)
        else:
            await asyncio.sleep(rng.random() * 0.03)
        await reconnect_all()

    # Settle: everyone connected and attached, then a final marker on each channel.
    await reconnect_all()
    for sub in subscribers:
        for channel in sub.channel_serials:
            await sub.wait_attached(channel)
    relay = relays[-1]
    for channel in channels:
        await publisher.publish(channel, "final")
    logs: dict[str, list[str]] = {}
    for channel in channels:
        async with asyncio.timeout(10):
            while True:
                items, _ = await rest_history(
                    port, KEY, channel, direction="forwards", limit="1000"
                )
                if items and items[-1]["name"] == "final":
                    break
                await asyncio.sleep(0.02)
        logs[channel] = [m["serial"] for m in items]
    for sub in subscribers:
        for channel in sub.channel_serials:
            await _wait_for(
                lambda s=sub, c=channel: (
                    bool(s.segments[c]) and logs[c][-1] in s.segments[c][-1]["serials"]
                ),
                10,
                "final marker",
            )
    for client in everyone:
        await client.drop()
    del relay
    # The seed must have exercised what it claims to.
    assert drops and restarts and published, (drops, restarts, published)
    assert sum(c.resumes for c in everyone) >= drops // 2, "drops within the TTL must resume"

    for sub in subscribers:
        assert not sub.violations, f"seed {seed}: {sub.name}: {sub.violations}" + "\n".join(
            sub.trace
        )
        assert not sub.errors, f"seed {seed}: {sub.name} was told continuity was lost: {sub.errors}"
        for channel, runs in sub.segments.items():
            log = logs[channel]
            for index, run in enumerate(runs):
                after = run["attach_serial"]
                tail = [s for s in log if s > after]
                got = run["serials"]
                last = index == len(runs) - 1 and channel in sub.channel_serials
                expected = tail if last else tail[: len(got)]
                differ = [k for k, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b]
                assert got == expected, (
                    f"seed {seed}: {sub.name} on {channel}, run {index} after {after}: "
                    f"got {len(got)} (dups {len(got) - len(set(got))}), expected {len(expected)}; "
                    f"first difference at {differ[:1] or min(len(got), len(expected))}"
                )
