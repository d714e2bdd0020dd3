"""The realtime protocol spoken with a bare WebSocket client, in msgpack and JSON: the handshake,
heartbeats, publishing and ACK order, and bad input answered on the right scope (NACK, channel
ERROR or connection ERROR) without disturbing other connections."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import msgpack
import pytest
import websockets
from raw_client import ConnectRaw, RawClient, connect_raw

from channel_relay.protocol.serials import parse_serial
from channel_relay.server import Relay

HEARTBEAT, ACK, NACK, CONNECTED, ERROR, ATTACH, ATTACHED, MESSAGE = 0, 1, 2, 4, 9, 10, 11, 15


def _nulls(value: Any, path: str = "") -> list[str]:
    if value is None:
        return [path or "<root>"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _nulls(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _nulls(v, f"{path}[{i}]")]
    return []


def _assert_error_info(error: Any, code: int, status: int) -> None:
    # ably-js drops a whole frame whose ErrorInfo lacks any of these.
    assert isinstance(error["message"], str)
    assert (error["code"], error["statusCode"]) == (code, status), error


async def _closed(client: RawClient, within: float = 5.0) -> None:
    """Wait for the relay to close the socket, failing on anything but ERROR/HEARTBEAT first."""
    async with asyncio.timeout(within):
        while True:
            try:
                message = await client.recv(within=within)
            except websockets.ConnectionClosed:
                return
            assert message.get("action") in (HEARTBEAT, ERROR), message


async def _ack(client: RawClient, msg_serial: int) -> dict[str, Any]:
    reply = await client.recv_action(ACK, NACK)
    assert reply["action"] == ACK, reply
    assert reply["msgSerial"] == msg_serial, reply
    return reply


async def _gather(
    client: RawClient, *, replies: int, messages: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Read until `replies` ACK/NACKs and `messages` MESSAGEs arrived (in whatever order the
    relay interleaves a publisher's ACK and its own echo)."""
    got_replies: list[dict[str, Any]] = []
    got_messages: list[dict[str, Any]] = []
    async with asyncio.timeout(5):
        while len(got_replies) < replies or len(got_messages) < messages:
            message = await client.recv()
            if message["action"] in (ACK, NACK):
                got_replies.append(message)
            elif message["action"] == MESSAGE:
                got_messages.append(message)
    return got_replies, got_messages


async def _still_works(client: RawClient) -> None:
    """A connection is alive and usable: it echoes a ping and ACKs a publish."""
    await client.send({"action": HEARTBEAT, "id": "still-there"})
    reply = await client.recv_action(HEARTBEAT)
    while reply.get("id") != "still-there":
        reply = await client.recv_action(HEARTBEAT)
    serial = await client.publish("alive", [{"data": "ok"}])
    await _ack(client, serial)


# Connecting


async def test_connected_has_connection_id_key_details_and_no_null_fields(
    relay: Relay, fmt: str
) -> None:
    url = f"ws://127.0.0.1:{relay.port}/?key={relay.default_key}&format={fmt}&v=6"
    async with websockets.connect(url) as ws:
        frame = await asyncio.wait_for(ws.recv(), 5)
    # msgpack must come in binary frames (ably-js fails to decode text ones), JSON in text.
    if fmt == "msgpack":
        assert isinstance(frame, bytes)
        message = msgpack.unpackb(frame, raw=False)
    else:
        assert isinstance(frame, str)
        message = json.loads(frame)
    assert message["action"] == CONNECTED and type(message["action"]) is int
    assert isinstance(message["connectionId"], str) and message["connectionId"]
    details = message["connectionDetails"]
    assert isinstance(details["connectionKey"], str) and details["connectionKey"]
    assert details["maxMessageSize"] == relay.settings.max_message_size
    assert details["maxIdleInterval"] > 0
    assert details["connectionStateTtl"] > 0
    assert "clientId" not in details  # an anonymous key: no clientId, not a null one
    assert "error" not in message
    assert _nulls(message) == []


async def test_each_connection_gets_its_own_id_and_key(relay: Relay) -> None:
    seen = set()
    for _ in range(3):
        client, connected = await connect_raw(relay.port, relay.default_key)
        seen.add((connected["connectionId"], connected["connectionDetails"]["connectionKey"]))
        await client.close()
    assert len({cid for cid, _ in seen}) == len({key for _, key in seen}) == 3


async def test_a_client_id_in_the_query_is_confirmed_in_connection_details(relay: Relay) -> None:
    client, connected = await connect_raw(relay.port, relay.default_key, clientId="alice")
    await client.close()
    assert connected["connectionDetails"]["clientId"] == "alice"


async def test_a_bad_key_gets_an_error_frame_after_the_upgrade_then_close(
    relay: Relay, fmt: str
) -> None:
    # A refused HTTP upgrade hides the reason from ably-js; a protocol ERROR does not.
    client, first = await connect_raw(relay.port, "app1.key1:wrong", fmt)
    assert first["action"] == ERROR
    assert "channel" not in first
    _assert_error_info(first["error"], 40101, 401)
    await _closed(client)


# Heartbeats


async def test_a_heartbeat_with_an_id_is_echoed_with_that_id(raw: ConnectRaw, fmt: str) -> None:
    client = await raw(fmt)
    await client.send({"action": HEARTBEAT, "id": "ping-42"})
    reply = await client.recv_action(HEARTBEAT)
    assert reply == {"action": HEARTBEAT, "id": "ping-42"}


async def test_a_heartbeat_without_an_id_is_answered_without_one(raw: ConnectRaw) -> None:
    client = await raw("json")
    await client.send({"action": HEARTBEAT})
    assert await client.recv_action(HEARTBEAT) == {"action": HEARTBEAT}


# Bad input on the connection scope


@pytest.mark.parametrize(
    "frame",
    ["{not json", "[1, 2, 3]", '"just a string"', "[" * 100_000, b"\xc1", b"\x93\x01\x02\x03"],
    ids=["json", "json-array", "json-string", "json-nested", "msgpack", "msgpack-array"],
)
async def test_a_malformed_frame_fails_that_connection_only(
    raw: ConnectRaw, frame: str | bytes
) -> None:
    bystander = await raw("msgpack")
    assert (await bystander.attach("shared"))["action"] == ATTACHED
    broken = await raw("json")

    await broken.send_raw(frame)
    error = await broken.recv_action(ERROR)
    assert "channel" not in error, "a connection-level ERROR has no channel"
    _assert_error_info(error["error"], 40000, 400)
    await _closed(broken)

    serial = await bystander.publish("shared", [{"data": "after"}])
    (ack,), (delivered,) = await _gather(bystander, replies=1, messages=1)
    assert (ack["action"], ack["msgSerial"]) == (ACK, serial)
    assert delivered["messages"][0]["data"] == "after"


@pytest.mark.parametrize(
    "msg_serial",
    [None, "0", -1, 1.5, True],
    ids=["missing", "string", "negative", "float", "bool"],
)
async def test_a_message_without_a_valid_msg_serial_is_a_connection_error(
    raw: ConnectRaw, fmt: str, msg_serial: Any
) -> None:
    client = await raw(fmt)
    message: dict[str, Any] = {"action": MESSAGE, "channel": "c", "messages": [{"data": "x"}]}
    if msg_serial is not None:
        message["msgSerial"] = msg_serial
    await client.send(message)
    error = await client.recv_action(ERROR, ACK, NACK)
    assert error["action"] == ERROR and "channel" not in error, error
    _assert_error_info(error["error"], 40000, 400)
    await _closed(client)


async def test_a_frame_over_max_frame_size_fails_the_connection_with_40009(
    relay: Relay, raw: ConnectRaw, fmt: str
) -> None:
    client = await raw(fmt)
    bystander = await raw("json")
    data = "x" * (relay.settings.max_frame_size + 1024)
    await client.publish("big", [{"data": data}])
    error = await client.recv_action(ERROR, ACK, NACK)
    assert error["action"] == ERROR and "channel" not in error, error
    _assert_error_info(error["error"], 40009, 413)
    await _closed(client)
    await _still_works(bystander)


async def test_an_unknown_action_without_msg_serial_or_channel_is_a_connection_error(
    raw: ConnectRaw,
) -> None:
    client = await raw("json")
    await client.send({"action": 99})
    error = await client.recv_action(ERROR)
    assert "channel" not in error
    _assert_error_info(error["error"], 40000, 400)
    await _closed(client)


# Bad input on a narrower scope


async def test_an_unknown_action_with_a_msg_serial_is_nacked_and_the_connection_carries_on(
    raw: ConnectRaw, fmt: str
) -> None:
    client = await raw(fmt)
    await client.send({"action": 99, "msgSerial": 0})
    client.msg_serial = 1
    nack = await client.recv_action(NACK, ERROR)
    assert nack["action"] == NACK and nack["msgSerial"] == 0, nack
    assert nack.get("count", 1) == 1
    _assert_error_info(nack["error"], 40000, 400)
    serial = await client.publish("after-nack", [{"data": "ok"}])
    assert serial == 1
    await _ack(client, 1)


async def test_an_unknown_action_on_a_channel_fails_that_channel_only(raw: ConnectRaw) -> None:
    client = await raw("json")
    await client.send({"action": 99, "channel": "odd"})
    error = await client.recv_action(ERROR)
    assert error["channel"] == "odd"
    _assert_error_info(error["error"], 40000, 400)
    await _still_works(client)


@pytest.mark.parametrize("name", ["", ":colon", "[unknown]x", "line\nbreak"], ids=repr)
async def test_attaching_an_invalid_channel_name_is_a_channel_error_40010(
    raw: ConnectRaw, fmt: str, name: str
) -> None:
    client = await raw(fmt)
    error = await client.attach(name)
    assert error["action"] == ERROR, error
    assert error["channel"] == name
    _assert_error_info(error["error"], 40010, 400)
    assert (await client.attach("valid"))["action"] == ATTACHED
    await _still_works(client)


async def test_publishing_to_an_invalid_channel_name_is_nacked_40010(raw: ConnectRaw) -> None:
    client = await raw("msgpack")
    serial = await client.publish(":bad", [{"data": "x"}])
    nack = await client.recv_action(NACK, ACK, ERROR)
    assert (nack["action"], nack["msgSerial"]) == (NACK, serial), nack
    _assert_error_info(nack["error"], 40010, 400)
    await _still_works(client)


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"data": 5}, 40013),
        ({"name": 5}, 40016),
        ({"data": "x", "extras": []}, 40032),
        ({"data": "x", "clientId": 7}, 40012),
    ],
    ids=["data", "name", "extras", "clientId"],
)
async def test_a_bad_message_is_nacked_with_its_code_and_nothing_is_delivered(
    raw: ConnectRaw, fmt: str, message: dict[str, Any], code: int
) -> None:
    client = await raw(fmt)
    assert (await client.attach("checked"))["action"] == ATTACHED
    bad = await client.publish("checked", [message])
    good = await client.publish("checked", [{"data": "good"}])
    (nack, ack), delivered = await _gather(client, replies=2, messages=1)
    assert (nack["action"], nack["msgSerial"]) == (NACK, bad), nack
    _assert_error_info(nack["error"], code, 400)
    assert (ack["action"], ack["msgSerial"]) == (ACK, good), ack
    assert [m["data"] for frame in delivered for m in frame["messages"]] == ["good"]


async def test_an_oversized_message_is_nacked_40009_and_the_connection_stays_up(
    relay: Relay, raw: ConnectRaw, fmt: str
) -> None:
    client = await raw(fmt)
    serial = await client.publish("big", [{"data": "x" * (relay.settings.max_message_size + 1)}])
    nack = await client.recv_action(NACK, ACK, ERROR)
    assert (nack["action"], nack["msgSerial"]) == (NACK, serial), nack
    _assert_error_info(nack["error"], 40009, 413)
    await _still_works(client)


# Publishing


async def test_publishing_without_attaching_is_acked_with_serials(
    raw: ConnectRaw, fmt: str
) -> None:
    client = await raw(fmt)
    serial = await client.publish("unattached", [{"data": "a"}, {"data": "b"}])
    ack = await _ack(client, serial)
    assert ack.get("count", 1) == 1
    (result,) = ack["res"]
    assert len(result["serials"]) == 2
    assert all(parse_serial(s) is not None for s in result["serials"])
    assert result["serials"] == sorted(result["serials"])


async def test_the_ack_serial_is_the_delivered_serial(raw: ConnectRaw, fmt: str) -> None:
    publisher = await raw(fmt)
    subscriber = await raw("json" if fmt == "msgpack" else "msgpack")
    assert (await subscriber.attach("same-serial"))["action"] == ATTACHED
    serial = await publisher.publish("same-serial", [{"data": "x"}])
    ack = await _ack(publisher, serial)
    delivered = await subscriber.recv_action(MESSAGE)
    assert delivered["messages"][0]["serial"] == ack["res"][0]["serials"][0]
    assert delivered["channelSerial"] == ack["res"][0]["serials"][0]


async def test_acks_come_back_in_msg_serial_order_for_a_pipelined_burst(
    raw: ConnectRaw, fmt: str
) -> None:
    client = await raw(fmt)
    channels = ["burst-a", "burst-b", "burst-c"]
    count = 200
    # Send everything before reading anything: the publishes are in flight together.
    for i in range(count):
        await client.publish(channels[i % 3], [{"data": f"m{i}"}])

    acked: list[int] = []
    serials: list[str] = []
    async with asyncio.timeout(15):
        while len(acked) < count:
            reply = await client.recv_action(ACK, NACK)
            assert reply["action"] == ACK, reply
            # One ACK may cover several consecutive publishes (count), one res entry each.
            n = reply.get("count", 1)
            assert len(reply["res"]) == n
            acked.extend(range(reply["msgSerial"], reply["msgSerial"] + n))
            serials.extend(entry["serials"][0] for entry in reply["res"])
    assert acked == list(range(count))
    for c in range(3):
        mine = serials[c::3]
        assert mine == sorted(mine) and len(set(mine)) == len(mine), channels[c]
        assert [parse_serial(s)[1] for s in mine if parse_serial(s)] == list(
            range(1, len(mine) + 1)
        )


async def test_remain_present_for_sets_how_long_a_dropped_connections_members_stay(
    raw: ConnectRaw,
) -> None:
    """The `remainPresentFor` transport param (ably-python's presence re-entry tests use it):
    with 0, a member leaves as soon as its socket drops, not after the relay's 15 s grace."""
    observer = await raw("json")
    assert (await observer.attach("remain"))["action"] == ATTACHED
    member = await raw("json", clientId="brief", remainPresentFor="0")
    assert (await member.attach("remain"))["action"] == ATTACHED
    await member.send(
        {"action": 14, "channel": "remain", "msgSerial": 0, "presence": [{"action": 2}]}
    )
    assert (await member.recv_action(ACK, NACK))["action"] == ACK
    entered = await observer.recv_action(14)
    assert [p["action"] for p in entered["presence"]] == [2]

    await member.ws.close()  # the socket goes; no CLOSE was sent
    left = await observer.recv_action(14)
    assert [(p["action"], p["clientId"]) for p in left["presence"]] == [(3, "brief")]


async def test_pipelined_attaches_are_all_answered_and_later_frames_wait_for_them(
    raw: ConnectRaw, fmt: str
) -> None:
    """Attaches are acted on side by side (bulk attaches overlap their store lookups), yet a
    channel's own frames stay in order and any other frame is answered after every ATTACH
    sent before it."""
    client = await raw(fmt)
    names = [f"bulk-{index}" for index in range(300)]
    for name in names:
        await client.send({"action": ATTACH, "channel": name})
    await client.send({"action": 12, "channel": names[0]})
    await client.send({"action": ATTACH, "channel": names[0]})
    await client.send({"action": HEARTBEAT, "id": "after-attaches"})
    replies: list[tuple[int, str]] = []
    async with asyncio.timeout(30):
        while True:
            reply = await client.recv()
            if reply["action"] == HEARTBEAT and reply.get("id") == "after-attaches":
                break
            replies.append((reply["action"], reply.get("channel", "")))
    assert sorted(c for a, c in replies if a == ATTACHED and c != names[0]) == sorted(names[1:])
    assert [a for a, c in replies if c == names[0]] == [ATTACHED, 13, ATTACHED]
