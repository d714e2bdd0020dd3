"""Whatever any format accepts for publishing is delivered to, and readable in history by,
clients of every format: realtime and REST publishers in JSON and msgpack, realtime subscribers
and REST history readers in both. What only one format can carry is refused by every publisher,
and then appears nowhere."""

from __future__ import annotations

import asyncio
import base64
import json
import math
from typing import Any

import aiohttp
import msgpack
import pytest
from raw_client import RawClient, connect_raw

from channel_relay.server import Relay

ACK, NACK, ATTACHED, MESSAGE = 1, 2, 11, 15
JSON, MSGPACK = "application/json", "application/x-msgpack"
PUBLISHERS = ["realtime-json", "realtime-msgpack", "rest-json", "rest-msgpack"]

pytestmark = pytest.mark.usefixtures("no_tracebacks")

# (name, data, extras, clientId, encoding) as the publisher means them; bytes are binary data.
ACCEPTED: list[dict[str, Any]] = [
    {"name": "text", "data": "héllo ☃ 🎉 \u0000 end"},
    {"name": "binary", "data": b"\x00\x01\xfe\xff"},
    {"name": "object", "data": {"a": [1, 2.5, None, True, "s"], "n": 2**53, "deep": {"x": []}}},
    {"name": "array", "data": [1, "two", {"three": 3.0}]},
    {
        "name": "extras",
        "data": "x",
        "extras": {"headers": {"k": "v"}, "n": {"f": -1.5e300, "i": -(2**63), "u": 2**64 - 1}},
    },
    {"name": "encoded", "data": "abc", "encoding": "utf-8"},
    {"name": "client", "data": "x", "clientId": "c1"},
    {"name": "no-data"},
    {"name": "", "data": ""},
]
# Values one format can carry and the other cannot, as a publisher of `formats` would send them.
REFUSED: list[tuple[dict[str, Any], tuple[str, ...]]] = [
    ({"name": "nan-extras", "data": "x", "extras": {"v": math.nan}}, ("json", "msgpack")),
    ({"name": "inf-data", "data": {"v": math.inf}}, ("json", "msgpack")),
    ({"name": "bin-extras", "data": "x", "extras": {"b": b"\x00"}}, ("msgpack",)),
    ({"name": "bin-in-data", "data": {"b": b"\x00"}}, ("msgpack",)),
    ({"name": "big-int", "data": "x", "extras": {"n": 2**64}}, ("json",)),
    ({"name": "surrogate\udfff", "data": "x"}, ("json",)),
    ({"name": "s", "data": "lone \ud800"}, ("json",)),
]


def _wire(message: dict[str, Any], fmt: str) -> dict[str, Any]:
    """The message as a client of `fmt` sends it: binary data as base64 over JSON."""
    out = dict(message)
    if fmt == "json" and isinstance(out.get("data"), bytes):
        out["data"] = base64.b64encode(out["data"]).decode()
        out["encoding"] = "base64"
    return out


def _body(messages: list[dict[str, Any]], fmt: str) -> bytes:
    if fmt == "json":
        return json.dumps(messages).encode()
    return msgpack.packb(messages, use_bin_type=True)


def _meaning(message: dict[str, Any]) -> dict[str, Any]:
    """What a reader makes of a received message: its encoding steps undone."""
    data, encoding = message.get("data"), message.get("encoding")
    steps = encoding.split("/") if encoding else []
    while steps and steps[-1] in ("base64", "json"):
        step = steps.pop()
        data = base64.b64decode(data) if step == "base64" else json.loads(data)
    fields = {
        "data": data,
        "extras": message.get("extras"),
        "clientId": message.get("clientId"),
        "encoding": "/".join(steps) or None,
    }
    return {"name": message.get("name")} | {k: v for k, v in fields.items() if v is not None}


async def _publish(relay: Relay, publisher: str, channel: str, message: dict[str, Any]) -> bool:
    """Publish one message; whether the relay accepted it."""
    kind, fmt = publisher.split("-")
    if kind == "realtime":
        client, _ = await connect_raw(relay.port, relay.default_key, fmt)
        try:
            serial = await client.publish(channel, [_wire(message, fmt)])
            reply = await client.recv_action(ACK, NACK)
            assert reply["msgSerial"] == serial
            return bool(reply["action"] == ACK)
        finally:
            await client.close()
    headers = {
        "Authorization": "Basic " + base64.b64encode(relay.default_key.encode()).decode(),
        "Content-Type": JSON if fmt == "json" else MSGPACK,
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{relay.url}/channels/{channel}/messages",
            data=_body([_wire(message, fmt)], fmt),
            headers=headers,
        ) as resp,
    ):
        assert resp.status in (201, 400), await resp.text()
        return resp.status == 201


async def _history(relay: Relay, channel: str, accept: str) -> list[dict[str, Any]]:
    headers = {
        "Authorization": "Basic " + base64.b64encode(relay.default_key.encode()).decode(),
        "Accept": accept,
    }
    url = f"{relay.url}/channels/{channel}/messages?direction=forwards&limit=1000"
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.headers["Content-Type"] == accept
        raw = await resp.read()
    items = json.loads(raw) if accept == JSON else msgpack.unpackb(raw, raw=False)
    return [_meaning(item) for item in items]


async def _received(client: RawClient, count: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        while len(messages) < count:
            frame = await client.recv_action(MESSAGE)
            messages.extend(_meaning(m) for m in frame["messages"])
    return messages


@pytest.mark.parametrize("publisher", PUBLISHERS)
async def test_what_one_format_accepts_every_format_receives_and_reads_in_history(
    relay: Relay, publisher: str
) -> None:
    channel = f"cross-{publisher}"
    subscribers = [
        (await connect_raw(relay.port, relay.default_key, fmt))[0] for fmt in ("json", "msgpack")
    ]
    for subscriber in subscribers:
        assert (await subscriber.attach(channel))["action"] == ATTACHED

    fmt = publisher.split("-")[1]
    for message, formats in REFUSED:
        if fmt in formats:
            assert not await _publish(relay, publisher, channel, message), message
    for message in ACCEPTED:
        assert await _publish(relay, publisher, channel, message), message

    expected = [_meaning(_wire(message, "msgpack")) for message in ACCEPTED]
    for subscriber in subscribers:
        assert await _received(subscriber, len(ACCEPTED)) == expected, subscriber.format
        await subscriber.close()
    for accept in (JSON, MSGPACK):
        assert await _history(relay, channel, accept) == expected, accept
