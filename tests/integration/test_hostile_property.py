"""Property: whatever ProtocolMessages a client sends, generated or mutated from valid ones, in
either format, the relay answers per the protocol (an ACK or NACK for each publish and presence
with a msgSerial, a channel ERROR, or a connection ERROR that ends the connection), sends only
frames the client's format can decode, logs no traceback, and a healthy connection on another
channel meanwhile receives every message once, in order.

Seeded and bounded (a fixed number of examples), so it runs in seconds and the same way each
time."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
import msgpack
import pytest
import websockets
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from raw_client import RawClient, connect_raw

from channel_relay.server import Relay

HEARTBEAT, ACK, NACK, CONNECTED, DISCONNECT, DISCONNECTED = 0, 1, 2, 4, 5, 6
CLOSE, CLOSED, ERROR, ATTACH, MESSAGE, PRESENCE = 7, 8, 9, 10, 15, 14
HEALTHY = "healthy"
FUZZ_CHANNELS = ("fuzz", "fuzz:b")
JSON, MSGPACK = "application/json", "application/x-msgpack"
_SERIAL_LIMIT = 2**53

pytestmark = pytest.mark.usefixtures("no_tracebacks", "watchers")

# Values: everything either wire format can spell, and some only one of them can.
_surrogate = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
_texts = st.text(max_size=8) | st.builds(
    lambda a, s, b: a + s + b, st.text(max_size=3), _surrogate, st.text(max_size=3)
)
# The values known to be carried by one format and not the other.
_SPECIALS = [
    float("nan"),
    float("inf"),
    float("-inf"),
    2**64,
    -(2**63) - 1,
    "a\udfffb",
    b"\x00\xff",
    msgpack.ExtType(1, b"x"),
]
_special = st.sampled_from(_SPECIALS)
_scalars = st.one_of(
    _special,
    _special,
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    _texts,
    st.binary(max_size=8),
    st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=4)),
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(_texts | st.integers(-5, 5), inner, max_size=3)
    ),
    max_leaves=8,
)
_channels = st.sampled_from([*FUZZ_CHANNELS, ""]) | _texts.filter(lambda n: n != HEALTHY)
_message_fields = ("name", "data", "encoding", "extras", "clientId", "id", "action", "serial")
_messages = st.fixed_dictionaries(
    {}, optional={key: _values | _texts for key in (*_message_fields, "version")}
)
_presence = st.fixed_dictionaries(
    {"action": st.sampled_from([2, 3, 4]) | _values},
    optional={key: _values for key in ("clientId", "data", "extras", "id")},
)
_generated = st.fixed_dictionaries(
    {"action": st.sampled_from([HEARTBEAT, ATTACH, 12, PRESENCE, MESSAGE, 17, 99]) | _values},
    optional={
        "channel": _channels | _values,
        "messages": st.lists(_messages, max_size=3) | _values,
        "presence": st.lists(_presence, max_size=2) | _values,
        "params": st.dictionaries(st.sampled_from(["rewind", "delta", "modes"]), _texts) | _values,
        "flags": _values,
        "channelSerial": _values,
        "id": _values,
        "auth": _values,
    },
)


# Where a mutation puts its hostile value, per kind of valid frame.
_TEMPLATES: list[tuple[dict[str, Any], list[tuple[Any, ...]]]] = [
    (
        {"action": MESSAGE, "channel": "fuzz", "messages": [{"name": "n", "data": "d"}]},
        [
            ("channel",),
            ("messages", 0, "name"),
            ("messages", 0, "data"),
            ("messages", 0, "extras"),
            ("messages", 0, "extras", "headers"),
            ("messages", 0, "clientId"),
            ("messages", 0, "encoding"),
            ("messages", 0, "action"),
            ("messages", 0, "id"),
        ],
    ),
    (
        {"action": ATTACH, "channel": "fuzz:b", "params": {"rewind": "1"}},
        [("channel",), ("params",), ("params", "rewind"), ("flags",), ("channelSerial",)],
    ),
    (
        {"action": PRESENCE, "channel": "fuzz", "presence": [{"action": 2, "data": "x"}]},
        [("presence", 0, "action"), ("presence", 0, "data"), ("presence", 0, "extras")],
    ),
]


_PLACES = [(template, path) for template, paths in _TEMPLATES for path in paths]


def _place(place: tuple[dict[str, Any], tuple[Any, ...]], value: Any, wrap: int) -> dict[str, Any]:
    """A copy of a valid frame with `value` at `path`: bare, inside an object or an array."""
    template, (*parents, key) = place
    frame = json.loads(json.dumps(template))
    target = frame
    for parent in parents:
        target = target[parent] if isinstance(parent, int) else target.setdefault(parent, {})
    target[key] = [value, {"k": value}, [value]][wrap]
    return frame


# Every known-troublesome value at every field, drawn uniformly (Hypothesis alone favours
# small, plain values), and any value at those fields.
_targeted = st.builds(_place, st.sampled_from(_PLACES), _special, st.integers(0, 2))
_mutated = st.builds(_place, st.sampled_from(_PLACES), _values, st.integers(0, 2))
_frames = st.lists(_targeted | _mutated | _generated, min_size=1, max_size=4)


def _jsonable(value: Any) -> Any:
    """What a JSON client sends for `value`: bytes and extension types as text, keys as text.
    NaN and Infinity stay, as JavaScript's JSON.stringify would not, but a hand-written client
    can."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, msgpack.ExtType):
        return repr(value)
    return value


def _packable(value: Any) -> Any:
    """What a msgpack client can send for `value`: integers within msgpack's 64 bits."""
    if isinstance(value, dict):
        return {_packable(k): _packable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_packable(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return max(-(2**63), min(value, 2**64 - 1))
    return value


def _encode(frame: dict[str, Any], fmt: str) -> str | bytes:
    if fmt == "json":
        return json.dumps(_jsonable(frame))
    # surrogatepass: a lone surrogate goes out as the invalid UTF-8 a broken client would send.
    return msgpack.packb(_packable(frame), use_bin_type=True, unicode_errors="surrogatepass")


@dataclass(repr=False)
class Healthy:
    """A publisher and a subscriber on their own channel, used between hostile examples."""

    publisher: RawClient
    subscriber: RawClient
    sent: int = 0
    received: list[str] = field(default_factory=list)

    async def round(self) -> None:
        """Publish the next message; the subscriber's next message must be exactly it."""
        data = str(self.sent)
        self.sent += 1
        serial = await self.publisher.publish(HEALTHY, [{"data": data}])
        reply = await self.publisher.recv_action(ACK, NACK, ERROR)
        assert (reply["action"], reply["msgSerial"]) == (ACK, serial), reply
        message = await self.subscriber.recv_action(MESSAGE, ERROR)
        assert message["action"] == MESSAGE, message
        self.received.extend(m["data"] for m in message["messages"])
        assert self.received == [str(n) for n in range(self.sent)], "every message once, in order"


@pytest.fixture
async def watchers(relay: Relay) -> AsyncIterator[None]:
    """A JSON and a msgpack subscriber of the channels the examples publish to, reading all
    along: whatever the relay accepted must reach both. Afterwards both formats read those
    channels' history."""
    clients = [
        (await connect_raw(relay.port, relay.default_key, fmt))[0] for fmt in ("json", "msgpack")
    ]
    for client in clients:
        for channel in FUZZ_CHANNELS:
            assert (await client.attach(channel))["action"] == 11

    async def drain(client: RawClient) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                message = await client.recv(within=3600)
                assert message.get("action") != ERROR, message

    readers = [asyncio.create_task(drain(client)) for client in clients]
    yield
    for reader in readers:
        assert not reader.done(), reader.exception()
        reader.cancel()
    for client in clients:
        await client.close()
    auth = {"Authorization": "Basic " + base64.b64encode(relay.default_key.encode()).decode()}
    async with aiohttp.ClientSession() as http:
        for channel, accept in itertools.product(FUZZ_CHANNELS, (JSON, MSGPACK)):
            url = f"{relay.url}/channels/{quote(channel, safe='')}/messages?limit=1000"
            async with http.get(url, headers={**auth, "Accept": accept}) as resp:
                assert resp.status == 200, await resp.text()
                assert resp.headers["Content-Type"] == accept


@pytest.fixture
async def healthy(relay: Relay) -> AsyncIterator[Healthy]:
    publisher, _ = await connect_raw(relay.port, relay.default_key, "msgpack")
    subscriber, _ = await connect_raw(relay.port, relay.default_key, "json")
    assert (await subscriber.attach(HEALTHY))["action"] == 11
    yield Healthy(publisher, subscriber)
    await publisher.close()
    await subscriber.close()


def _covered(reply: dict[str, Any]) -> range:
    return range(reply["msgSerial"], reply["msgSerial"] + reply.get("count", 1))


def _check_error_info(error: Any) -> None:
    assert isinstance(error, dict), error
    assert isinstance(error.get("code"), int) and isinstance(error.get("statusCode"), int), error
    assert isinstance(error.get("message"), str), error


async def _exchange(client: RawClient, frames: list[dict[str, Any]], fmt: str) -> None:
    """Send `frames` (publishes and presence numbered 0, 1, ...), then a probe; check every
    answer until the probe's echo, or until the relay ends the connection with an error."""
    expected: set[int] = set()
    serial = 0
    for frame in frames:
        if frame.get("action") in (MESSAGE, PRESENCE) and "msgSerial" not in frame:
            frame["msgSerial"] = serial
            expected.add(serial)
            serial += 1
        await client.send_raw(_encode(frame, fmt))
    await client.send({"action": HEARTBEAT, "id": "probe"})
    answered: set[int] = set()
    probed = False
    ended_by: dict[str, Any] | None = None
    try:
        async with asyncio.timeout(10):
            while not probed or not expected <= answered:
                reply = await client.recv()
                action = reply.get("action")
                if action in (ACK, NACK):
                    covered = set(_covered(reply))
                    assert not covered & answered, f"answered twice: {reply}"
                    answered |= covered
                    if action == NACK:
                        _check_error_info(reply["error"])
                elif action == HEARTBEAT and reply.get("id") == "probe":
                    probed = True
                elif action in (ERROR, DISCONNECTED) and "channel" not in reply:
                    _check_error_info(reply["error"])
                    ended_by = reply
                elif action == ERROR:
                    _check_error_info(reply["error"])
                elif action == CLOSED:
                    ended_by = reply
    except websockets.ConnectionClosed:
        closing = any(frame.get("action") in (CLOSE, DISCONNECT) for frame in frames)
        assert ended_by is not None or closing, (
            "the relay closed the connection without an Ably error"
        )
        if ended_by is not None and ended_by["action"] == DISCONNECTED:
            code = ended_by["error"]["code"]
            assert 40140 <= code < 40150, f"DISCONNECTED {code}: the relay failed, not the client"
        return
    assert ended_by is None, f"the connection ended ({ended_by}) but stayed open"


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
@seed(15)
@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frames=_frames)
async def test_hostile_protocol_messages_get_protocol_answers_and_harm_no_one_else(
    relay: Relay, healthy: Healthy, fmt: str, frames: list[dict[str, Any]]
) -> None:
    client, first = await connect_raw(relay.port, relay.default_key, fmt, clientId="fuzzer")
    assert first["action"] == CONNECTED
    try:
        await _exchange(client, frames, fmt)
    finally:
        await client.close()
    await healthy.round()
