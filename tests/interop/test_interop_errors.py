"""Bad input reaches the client as the Ably ErrorInfo it expects, on the right scope, and never
disturbs other connections: through ably-js where the SDK will send it, raw frames otherwise."""

from __future__ import annotations

import asyncio
from typing import Any

import msgpack
import pytest
from interop_support import ConnectRaw, RawClient, RunNode, b64, connect_raw

LIMIT = 65536


async def test_oversized_message_is_refused_with_40009_and_client_keeps_working(
    run_node: RunNode, fmt: str
) -> None:
    out = await run_node("too_large.mjs", format=fmt, args={"channel": "too-large"})
    # ably-js takes the limit from CONNECTED connectionDetails and refuses before sending.
    assert out["maxMessageSize"] == LIMIT
    assert out["realtimeError"]["code"] == 40009
    assert out["afterRealtime"]["serials"]
    # With its own limit raised, the REST client sends; the relay answers 40009 / 413.
    for error in (out["restError"], out["binaryError"]):
        assert error["code"] == 40009, error
        assert error["statusCode"] == 413, error
    assert out["afterRest"]["serials"]
    assert out["connectionState"] == "connected"
    assert out["history"] == ["small", "small-rest"]


async def _ack_or_nack(client: RawClient, msg_serial: int) -> dict[str, Any]:
    reply = await client.recv_action(1, 2)
    assert reply["msgSerial"] == msg_serial, reply
    assert reply.get("count", 1) == 1, reply
    return reply


async def test_relay_nacks_oversized_realtime_publish_with_40009(raw: ConnectRaw, fmt: str) -> None:
    """What ably-js refuses client-side, the relay must refuse too: a raw publisher."""
    client = await raw(fmt)
    assert (await client.attach("limits"))["action"] == 11
    cases: list[tuple[str | bytes, bool]] = [
        ("x" * (LIMIT + 1), False),
        ("x" * LIMIT, True),
        (b"\x07" * (LIMIT + 1), False),
    ]
    if fmt == "msgpack":
        # Over JSON, whether base64 counts encoded or decoded is the relay's choice.
        cases.append((b"\x07" * LIMIT, True))
    for data, fits in cases:
        message: dict[str, Any] = {"data": data}
        if isinstance(data, bytes) and fmt == "json":
            message = {"data": b64(data), "encoding": "base64"}
        serial = await client.publish("limits", [message])
        reply = await _ack_or_nack(client, serial)
        if fits:
            assert reply["action"] == 1, f"{len(data)} bytes must fit: {reply}"
            assert reply["res"][0]["serials"][0]
        else:
            assert reply["action"] == 2, f"{len(data)} bytes must be refused: {reply}"
            assert reply["error"]["code"] == 40009
            assert reply["error"]["statusCode"] in (400, 413)

    # The connection keeps working after the NACKs.
    serial = await client.publish("limits", [{"name": "after", "data": "ok"}])
    assert (await _ack_or_nack(client, serial))["action"] == 1


INVALID_CHANNELS = ["bad\nname", ":leading-colon", "[unclosed-qualifier"]


async def test_invalid_channel_name_fails_that_channel_with_40010(run_node: RunNode) -> None:
    out = await run_node(
        "bad_channel.mjs", args={"names": ["", *INVALID_CHANNELS], "good": "good-channel"}
    )
    for name, result in out["realtime"].items():
        assert result["error"] is not None and result["error"].get("code") == 40010, (name, result)
        assert result["state"] == "failed", (name, result)
        assert result["reason"]["code"] == 40010, (name, result)
    assert out["goodPublish"]["serials"]
    assert out["connectionState"] == "connected"
    for name in INVALID_CHANNELS:
        for op, error in out["rest"][name].items():
            assert error.get("code") == 40010, (name, op, error)
            assert error.get("statusCode") == 400, (name, op, error)


@pytest.mark.parametrize(
    ("key_name", "secret"),
    [("app1.key1", "wrong-secret"), ("app1.nosuchkey", "secret1")],
    ids=["wrong-secret", "unknown-key"],
)
async def test_bad_key_fails_the_connection_and_rest_requests(
    run_node: RunNode, fmt: str, key_name: str, secret: str
) -> None:
    out = await run_node("bad_key.mjs", format=fmt, key=f"{key_name}:{secret}", args={})
    allowed = {40101} if secret == "wrong-secret" else {40101, 40400}
    # An ERROR without a channel is fatal (transport.ts onFatalError): state failed, no retry.
    assert out["realtime"]["state"] == "failed", out["realtime"]
    assert out["realtime"]["reason"]["code"] in allowed, out["realtime"]
    for op in ("restHistory", "restPublish"):
        assert out[op].get("code") in allowed, (op, out[op])
        assert out[op].get("statusCode") == 401, (op, out[op])
    assert out["restTime"] == "number"


MALFORMED: list[tuple[str, str | bytes]] = [
    ("json", "{not json"),
    ("json", "[1, 2, 3]"),
    ("json", '{"action": "fifteen"}'),
    ("json", '{"action": 99}'),
    ("json", '{"action": 10, "channel": 123}'),
    ("msgpack", b"\xc1"),
    ("msgpack", msgpack.packb([1, 2, 3])),
    ("msgpack", msgpack.packb({"action": 99})),
]


@pytest.mark.parametrize(
    ("frame_format", "frame"),
    MALFORMED,
    ids=[f"{f}-{i}" for i, (f, _) in enumerate(MALFORMED)],
)
async def test_malformed_frame_gets_an_error_and_other_connections_keep_working(
    raw: ConnectRaw, frame_format: str, frame: str | bytes
) -> None:
    good = await raw("json")
    assert (await good.attach("shared"))["action"] == 11
    bad = await raw(frame_format)

    await bad.send_raw(frame)
    error = await bad.recv_action(9, 2, 13)
    assert error["action"] == 9, f"expected ERROR, got {error}"
    code = error["error"]["code"]
    assert 40000 <= code < 41000, error
    assert error["error"]["statusCode"] == 400, error
    assert not error.get("channel"), "a connection-wide ERROR carries no channel"
    # The ERROR is fatal for that connection: the relay closes the socket after it.
    async with asyncio.timeout(5):
        await bad.ws.wait_closed()

    serial = await good.publish("shared", [{"name": "still-alive", "data": "yes"}])
    delivered = await good.recv_action(15)
    assert delivered["messages"][0]["name"] == "still-alive"
    ack = await _ack_or_nack(good, serial)
    assert ack["action"] == 1


@pytest.mark.parametrize(
    ("messages", "codes"),
    [
        ("not-a-list", {40013}),
        ([{"name": 123}], {40013, 40016}),
        ([{"data": 42}], {40013}),
        ([{"data": "x", "encoding": 7}], {40013}),
        ([{"extras": "nope"}], {40013, 40032}),
    ],
    ids=["messages-not-list", "name-number", "data-number", "encoding-number", "extras-string"],
)
async def test_publish_with_wrong_field_types_is_nacked_and_connection_survives(
    raw: ConnectRaw, messages: Any, codes: set[int]
) -> None:
    client = await raw("json")
    assert (await client.attach("typed"))["action"] == 11
    serial = await client.publish("typed", messages)
    reply = await _ack_or_nack(client, serial)
    assert reply["action"] == 2, f"expected NACK, got {reply}"
    assert reply["error"]["code"] in codes, reply

    serial = await client.publish("typed", [{"name": "fine", "data": "ok"}])
    assert (await _ack_or_nack(client, serial))["action"] == 1


async def test_bad_key_on_raw_connection_gets_error_frame_not_http_refusal(relay: Any) -> None:
    """ably-js can only act on an ERROR protocol message; an HTTP 401 at the upgrade makes it
    retry forever as if the network were down."""
    client, first = await connect_raw(relay.port, "app1.key1:wrong", "json")
    try:
        assert first["action"] == 9, first
        assert first["error"]["code"] == 40101, first
        assert "channel" not in first or first["channel"] is None
    finally:
        await client.close()


async def test_extras_only_msgpack_can_carry_are_refused_40032_and_json_readers_are_unharmed(
    run_node: RunNode,
) -> None:
    out = await run_node("hostile_extras.mjs", args={"channel": "hostile-extras"})
    for error in (out["binaryError"], out["nanError"]):
        assert (error["code"], error["statusCode"]) == (40032, 400), error
    assert out["received"] == ["after"]
    assert out["history"] == ["after"]
    assert (out["publisherState"], out["readerState"]) == ("connected", "connected")


async def test_a_lone_surrogate_in_a_channel_or_message_name_is_refused_on_its_scope(
    run_node: RunNode,
) -> None:
    out = await run_node("hostile_unicode.mjs", format="json", args={"channel": "unicode"})
    assert (out["attachError"]["code"], out["attachError"]["statusCode"]) == (40010, 400)
    assert (out["nameError"]["code"], out["nameError"]["statusCode"]) == (40016, 400)
    assert out["history"] == ["after"]
    assert out["state"] == "connected"
