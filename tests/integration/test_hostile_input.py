"""Hostile input never costs a connection, a message or another tenant: each input that once
killed a connection (or stored what a reader of the other format could not read) now gets the
Ably error of its scope, and the connection and its neighbours carry on. Run through bare
sockets, in both formats, with any traceback the relay logs failing the test."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgpack
import pytest
from raw_client import ConnectRaw, RawClient

from channel_relay.server import Relay

ACK, NACK, ERROR, ATTACHED, MESSAGE, PRESENCE = 1, 2, 9, 11, 15, 14

pytestmark = pytest.mark.usefixtures("no_tracebacks")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _auth(relay: Relay) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(relay.default_key.encode()).decode()}


async def _reply(client: RawClient, msg_serial: int) -> dict[str, Any]:
    reply = await client.recv_action(ACK, NACK, ERROR)
    assert reply.get("msgSerial") == msg_serial, reply
    return reply


def _publish_frame(channel: Any, *messages: Any) -> dict[str, Any]:
    """A MESSAGE with msgSerial 0 (what _nacked expects of a fresh connection)."""
    return {"action": MESSAGE, "channel": channel, "msgSerial": 0, "messages": list(messages)}


def _code(reply: dict[str, Any]) -> tuple[int, int]:
    return reply["error"]["code"], reply["error"]["statusCode"]


async def _alive(client: RawClient, channel: str = "alive") -> None:
    """The connection still publishes and receives."""
    if (await client.attach(channel))["action"] != ATTACHED:
        raise AssertionError(f"could not attach {channel}")
    serial = await client.publish(channel, [{"data": "still here"}])
    got_ack = got_message = False
    while not (got_ack and got_message):
        message = await client.recv_action(ACK, NACK, MESSAGE, ERROR)
        assert message["action"] in (ACK, MESSAGE), message
        if message["action"] == ACK:
            assert message["msgSerial"] == serial
            got_ack = True
        else:
            assert message["messages"][0]["data"] == "still here"
            got_message = True


async def _nacked(client: RawClient, frame: dict[str, Any] | bytes | str) -> tuple[int, int]:
    serial = client.msg_serial
    client.msg_serial += 1
    await (client.send_raw(frame) if isinstance(frame, bytes | str) else client.send(frame))
    reply = await _reply(client, serial)
    assert reply["action"] == NACK, reply
    return _code(reply)


# The repros of issue 15, each once a dead connection


async def test_a_message_action_that_is_a_list_is_nacked_40013(raw: ConnectRaw) -> None:
    client = await raw("json")
    frame = '{"action":15,"channel":"c","msgSerial":0,"messages":[{"action":[1]}]}'
    assert await _nacked(client, frame) == (40013, 400)
    await _alive(client)


async def test_a_msgpack_map_keyed_by_an_array_is_a_protocol_error_on_that_connection_only(
    raw: ConnectRaw,
) -> None:
    bystander = await raw("json")
    client = await raw("msgpack")
    await client.send_raw(bytes.fromhex("81910101"))
    error = await client.recv_action(ERROR)
    assert "channel" not in error and _code(error) == (40000, 400), error
    await _alive(bystander)


@pytest.mark.parametrize("fmt_name", ["json"])
async def test_a_lone_surrogate_in_a_channel_name_is_refused_40010_on_its_scope(
    raw: ConnectRaw, fmt_name: str
) -> None:
    # Only JSON can spell a lone surrogate (msgpack strings are UTF-8).
    client = await raw(fmt_name)
    error = await client.attach("a\udfffb")
    assert error["action"] == ERROR and _code(error) == (40010, 400), error
    assert error["channel"] == "a\udfffb", "the error names the channel as the client spelt it"
    assert await _nacked(client, _publish_frame("a\udfffb", {})) == (40010, 400)
    await _alive(client)


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"name": "a\udfffb", "data": "x"}, 40016),
        ({"data": "a\ud800"}, 40013),
        ({"data": {"k\udfff": 1}}, 40013),
        ({"data": "x", "clientId": "\udfff"}, 40012),
        ({"data": "x", "extras": {"headers": {"h": "\ud83d"}}}, 40032),
        ({"data": "x", "id": "\udc00"}, 40013),
    ],
    ids=["name", "data", "data-key", "clientId", "extras", "id"],
)
async def test_a_lone_surrogate_in_a_message_is_nacked_and_never_stored(
    relay: Relay,
    raw: ConnectRaw,
    http: aiohttp.ClientSession,
    message: dict[str, Any],
    code: int,
) -> None:
    client = await raw("json")
    assert await _nacked(client, _publish_frame("u", message)) == (code, 400)
    await _alive(client, "u")
    async with http.get(f"{relay.url}/channels/u/messages", headers=_auth(relay)) as resp:
        assert resp.status == 200
        assert [m["data"] for m in await resp.json()] == ["still here"]


async def test_a_presence_action_that_is_a_list_is_nacked_40013(raw: ConnectRaw) -> None:
    client = await raw("json", clientId="me")
    assert (await client.attach("p"))["action"] == ATTACHED
    frame = '{"action":14,"channel":"p","msgSerial":0,"presence":[{"action":[2]}]}'
    assert await _nacked(client, frame) == (40013, 400)
    await _alive(client)


async def test_a_rewind_longer_than_the_epoch_replays_everything_kept(raw: ConnectRaw) -> None:
    publisher = await raw("json")
    serial = await publisher.publish("rw", [{"data": "kept"}])
    assert (await _reply(publisher, serial))["action"] == ACK
    client = await raw("msgpack")
    await client.send(
        {"action": 10, "channel": "rw", "params": {"rewind": "99999999999999999999s"}}
    )
    attached = await client.recv_action(ATTACHED, ERROR)
    assert attached["action"] == ATTACHED, attached
    replayed = await client.recv_action(MESSAGE)
    assert [m["data"] for m in replayed["messages"]] == ["kept"]


@pytest.mark.parametrize("rewind", ["²", "1²s", "99999999999999999999"], ids=repr)
async def test_odd_rewind_values_are_answered_on_the_channel(raw: ConnectRaw, rewind: str) -> None:
    client = await raw("json")
    await client.send({"action": 10, "channel": "rw", "params": {"rewind": rewind}})
    reply = await client.recv_action(ATTACHED, ERROR)
    if reply["action"] == ERROR:
        assert reply["channel"] == "rw" and _code(reply) == (40003, 400), reply
    await _alive(client)


@pytest.mark.parametrize(
    "param", ["end", "start", "cursor", "limit"], ids=lambda p: f"{p}=99999999999999999999"
)
async def test_a_history_bound_out_of_range_is_400_40003(
    relay: Relay, http: aiohttp.ClientSession, param: str
) -> None:
    url = f"{relay.url}/channels/c/messages?{param}=99999999999999999999"
    async with http.get(url, headers=_auth(relay)) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == 40003


async def test_binary_inside_object_data_from_msgpack_is_nacked_40013(raw: ConnectRaw) -> None:
    client = await raw("msgpack")
    assert await _nacked(client, _publish_frame("b", {"data": {"a": b"\0"}})) == (40013, 400)
    await _alive(client)


@pytest.mark.parametrize(
    "extras",
    [
        {"headers": {"blob": b"\0\1"}},
        {"ref": msgpack.ExtType(5, b"x")},
        {1: "int key"},
    ],
    ids=["binary", "ext-type", "int-key"],
)
async def test_extras_only_msgpack_can_carry_are_nacked_40032_and_json_readers_are_unharmed(
    relay: Relay, raw: ConnectRaw, http: aiohttp.ClientSession, extras: dict[Any, Any]
) -> None:
    json_reader = await raw("json")
    assert (await json_reader.attach("x"))["action"] == ATTACHED
    client = await raw("msgpack")
    frame = msgpack.packb(_publish_frame("x", {"extras": extras}), use_bin_type=True)
    assert await _nacked(client, frame) == (40032, 400)
    serial = await client.publish("x", [{"data": "next", "extras": {"headers": {"k": "v"}}}])
    assert (await _reply(client, serial))["action"] == ACK
    delivered = await json_reader.recv_action(MESSAGE)
    assert [m["data"] for m in delivered["messages"]] == ["next"]
    async with http.get(f"{relay.url}/channels/x/messages", headers=_auth(relay)) as resp:
        assert resp.status == 200
        assert [m["data"] for m in await resp.json()] == ["next"]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize(
    ("field", "code"), [("data", 40013), ("extras", 40032)], ids=["data", "extras"]
)
async def test_non_finite_numbers_are_nacked_and_never_sent_back(
    raw: ConnectRaw, number: str, field: str, code: int
) -> None:
    client = await raw("json")
    assert (await client.attach("n"))["action"] == ATTACHED
    frame = (
        f'{{"action":15,"channel":"n","msgSerial":0,"messages":[{{"{field}":{{"v":{number}}}}}]}}'
    )
    assert await _nacked(client, frame) == (code, 400)
    await _alive(client, "n")


@pytest.mark.parametrize(
    ("field", "code"), [("data", 40013), ("extras", 40032)], ids=["data", "extras"]
)
async def test_integers_msgpack_cannot_carry_are_nacked_from_json(
    raw: ConnectRaw, field: str, code: int
) -> None:
    client = await raw("json")
    assert await _nacked(client, _publish_frame("i", {field: {"n": 2**64}})) == (code, 400)
    await _alive(client)


async def test_non_finite_floats_from_msgpack_are_nacked(raw: ConnectRaw) -> None:
    client = await raw("msgpack")
    frame = _publish_frame("n", {"data": [float("nan")], "extras": {"v": 1.5}})
    assert await _nacked(client, frame) == (40013, 400)
    await _alive(client)


async def test_a_heartbeat_id_that_is_not_a_string_is_not_echoed(raw: ConnectRaw) -> None:
    client = await raw("json")
    await client.send_raw('{"action":0,"id":{"v":NaN}}')
    reply = await client.recv_action(0)
    assert "id" not in reply
    await _alive(client)


@pytest.mark.parametrize(
    "params", [{"rewind": "\udfff"}, {"k": float("inf")}, {"deep": [[[[[[[[]]]]]]]] * 2}]
)
async def test_attach_params_are_checked_before_they_are_echoed(
    raw: ConnectRaw, params: dict[str, Any]
) -> None:
    client = await raw("json")
    await client.send({"action": 10, "channel": "p", "params": params})
    reply = await client.recv_action(ATTACHED, ERROR)
    if reply["action"] == ERROR:
        assert reply["channel"] == "p" and _code(reply)[0] == 40003, reply
    await _alive(client)


async def test_a_json_rest_publish_with_nan_is_refused_40013(
    relay: Relay, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        f"{relay.url}/channels/r/messages",
        data='{"data":{"v":NaN}}',
        headers={**_auth(relay), "Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == 40013


@pytest.mark.parametrize(
    "request_head",
    [
        "GET /time?pad=" + "a" * 9000 + " HTTP/1.1\r\nHost: relay\r\n\r\n",
        "GET /channels/" + "c" * 9000 + "/messages HTTP/1.1\r\nHost: relay\r\n\r\n",
        "GET /time HTTP/1.1\r\nHost: relay\r\nX-Pad: " + "h" * 9000 + "\r\n\r\n",
    ],
    ids=["query", "path", "header"],
)
async def test_a_request_line_or_header_over_8190_bytes_gets_the_ably_envelope(
    relay: Relay, request_head: str
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
    try:
        writer.write(request_head.encode())
        head, _, body = (await reader.read()).partition(b"\r\n\r\n")
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.0 400") or head.startswith(b"HTTP/1.1 400"), head
    assert b"Content-Type: application/json" in head
    assert b"X-Ably-Errorcode: 40000" in head
    assert json.loads(body)["error"]["code"] == 40000


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/keys/app1.key1/requestToken", '{"clientId":"\\udfff"}', 40001),
        ("/keys/app1.key1/requestToken", '{"ttl":NaN}', 40001),
        ("/keys/app1.key1/revokeTokens", '{"targets":["clientId:\\udfff"]}', 40001),
        ("/messages", '{"channels":"\\udfff","messages":{"data":"x"}}', 40010),
    ],
    ids=["token-clientId", "token-ttl", "revoke-target", "batch-channel"],
)
async def test_rest_bodies_with_values_json_cannot_round_trip_are_refused_not_500(
    relay: Relay, http: aiohttp.ClientSession, path: str, body: str, code: int
) -> None:
    headers = {**_auth(relay), "Content-Type": "application/json"}
    async with http.post(f"{relay.url}{path}", data=body, headers=headers) as resp:
        reply = await resp.json()
    # A batch answers per channel (201 with each one's error); everything else is a 400.
    error = reply["error"] if "error" in reply else reply[0]["results"][0]["error"]
    assert error["code"] == code, reply
