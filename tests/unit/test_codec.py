"""The wire codec: JSON text frames and msgpack binary frames carry the same ProtocolMessage, and
binary payloads cross between the two formats as the same bytes."""

from __future__ import annotations

import base64
import json
from typing import Any

import msgpack
import pytest

from channel_relay.protocol.codec import (
    decode_body,
    decode_frame,
    encode_body,
    encode_frame,
    from_json_data,
    to_json_data,
)
from channel_relay.protocol.errors import AblyError

PUBLISH: dict[str, Any] = {
    "action": 15,
    "channel": "chat é/1",
    "msgSerial": 7,
    "messages": [
        {"name": "greeting", "data": "hello ☃", "clientId": "alice"},
        {"name": "obj", "data": '{"a":[1,2]}', "encoding": "json", "extras": {"headers": {}}},
        {"action": 0, "size": 5, "data": "sized"},
    ],
}


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def _unpack(frame: bytes | str) -> Any:
    assert isinstance(frame, bytes), "msgpack must travel in binary frames"
    return msgpack.unpackb(frame, raw=False)


def _nulls(value: Any, path: str = "") -> list[str]:
    """Paths of every None inside `value`: ably-js and ably-python choke on explicit nulls."""
    if value is None:
        return [path or "<root>"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _nulls(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _nulls(v, f"{path}[{i}]")]
    return []


# Decoding: both formats, one dict


def test_json_text_and_msgpack_binary_frames_decode_to_the_same_message() -> None:
    from_json = decode_frame(json.dumps(PUBLISH))
    from_msgpack = decode_frame(_pack(PUBLISH))
    assert from_json == from_msgpack == PUBLISH


def test_a_frame_decodes_with_its_integers_as_numbers_in_both_formats() -> None:
    for frame in (json.dumps({"action": 0, "id": "ping-1"}), _pack({"action": 0, "id": "ping-1"})):
        message = decode_frame(frame)
        assert message["action"] == 0 and type(message["action"]) is int


@pytest.mark.parametrize(
    ("encoding", "remaining"),
    [("base64", None), ("utf-8/base64", "utf-8"), ("json/utf-8/base64", "json/utf-8")],
)
def test_binary_published_over_json_becomes_bytes_for_a_msgpack_reader(
    encoding: str, remaining: str | None
) -> None:
    payload = bytes(range(256))
    frame = json.dumps(
        {
            "action": 15,
            "channel": "bin",
            "msgSerial": 0,
            "messages": [{"data": base64.b64encode(payload).decode(), "encoding": encoding}],
        }
    )
    message = decode_frame(frame)["messages"][0]
    assert message["data"] == payload
    # The base64 step is undone, so it is no longer listed; earlier steps stay for the reader.
    assert message.get("encoding") == remaining
    if remaining is None:
        assert "encoding" not in message

    delivered = _unpack(encode_frame({"action": 15, "messages": [message]}, "msgpack"))
    assert delivered["messages"][0]["data"] == payload  # msgpack bin, not a base64 string
    assert type(delivered["messages"][0]["data"]) is bytes


def test_binary_from_msgpack_reaches_a_json_reader_as_base64_with_a_base64_step() -> None:
    payload = b"\x00\xff binary \x80"
    published = decode_frame(
        _pack(
            {
                "action": 15,
                "channel": "bin",
                "msgSerial": 0,
                "messages": [{"data": payload}, {"data": payload, "encoding": "utf-8"}],
            }
        )
    )
    frame = encode_frame({"action": 15, "channel": "bin", **published}, "json")
    assert isinstance(frame, str), "JSON must travel in text frames"
    plain, utf8 = json.loads(frame)["messages"]
    assert base64.b64decode(plain["data"]) == payload
    assert plain["encoding"] == "base64"
    assert base64.b64decode(utf8["data"]) == payload
    assert utf8["encoding"] == "utf-8/base64"


def test_binary_survives_a_json_round_trip_unchanged() -> None:
    payload = b"\x01\x02\x03"
    original = {"action": 15, "messages": [{"data": payload, "encoding": "cipher"}]}
    assert decode_frame(encode_frame(original, "json")) == original


def test_encoding_for_json_leaves_the_callers_message_untouched() -> None:
    message = {"data": b"\x00", "name": "n"}
    frame_message = {"action": 15, "messages": [message]}
    encode_frame(frame_message, "json")
    assert message == {"data": b"\x00", "name": "n"}
    assert to_json_data(message) is not message


def test_text_data_is_not_reencoded_for_either_format() -> None:
    message = {"action": 15, "messages": [{"data": "text", "encoding": "json"}]}
    assert json.loads(encode_frame(message, "json")) == message
    assert _unpack(encode_frame(message, "msgpack")) == message


def test_rest_bodies_transcode_binary_data_like_frames() -> None:
    payload = b"\xde\xad\xbe\xef"
    body = json.dumps([{"data": base64.b64encode(payload).decode(), "encoding": "base64"}])
    assert decode_body(body.encode(), "json") == [{"data": payload}]
    single = json.dumps({"data": base64.b64encode(payload).decode(), "encoding": "utf-8/base64"})
    assert decode_body(single.encode(), "json") == {"data": payload, "encoding": "utf-8"}

    as_json = json.loads(encode_body([{"data": payload, "serial": "s"}], "json"))
    assert as_json == [
        {"data": base64.b64encode(payload).decode(), "encoding": "base64", "serial": "s"}
    ]
    as_msgpack = msgpack.unpackb(encode_body([{"data": payload}], "msgpack"), raw=False)
    assert as_msgpack == [{"data": payload}]


# Nothing null appears that was not sent


def test_decoding_and_encoding_introduce_no_null_fields() -> None:
    payload = b"bytes"
    sent = {
        "action": 15,
        "channel": "c",
        "messages": [
            {"data": base64.b64encode(payload).decode(), "encoding": "base64"},
            {"data": "plain"},
            {"name": "no data"},
        ],
    }
    decoded = decode_frame(json.dumps(sent))
    assert _nulls(decoded) == []
    for fmt in ("json", "msgpack"):
        frame = encode_frame(decoded, fmt)
        out = json.loads(frame) if fmt == "json" else _unpack(frame)
        assert _nulls(out) == [], fmt
        assert "encoding" not in out["messages"][1]
        assert "encoding" not in out["messages"][2]
        assert "data" not in out["messages"][2]


def test_a_client_null_encoding_is_left_alone_and_not_turned_into_bytes() -> None:
    # ably-js's JSON keeps nulls; the codec must neither crash on them nor treat the data as binary.
    item: dict[str, Any] = {"data": "aGk=", "encoding": None}
    from_json_data(item)
    assert item == {"data": "aGk=", "encoding": None}


# Refusals


@pytest.mark.parametrize(
    "frame",
    [
        "",
        "{",
        '{"action": 15,',
        "not json",
        b"",
        b"\xc1",  # a byte msgpack never uses
        b"\x92\x01",  # an array cut short
        b"\x81\xa1a\x01\x02",  # a map followed by trailing bytes
        b"\xa3\xff\xfe\xfd",  # a str that is not UTF-8
    ],
    ids=repr,
)
def test_malformed_frames_are_refused_with_40000(frame: str | bytes) -> None:
    with pytest.raises(AblyError) as info:
        decode_frame(frame)
    assert (info.value.code, info.value.status) == (40000, 400)


@pytest.mark.parametrize(
    "frame",
    ["[1, 2]", '"action"', "15", "null", _pack([{"action": 0}]), _pack(15), _pack(None)],
    ids=repr,
)
def test_frames_that_are_not_objects_are_refused_with_40000(frame: str | bytes) -> None:
    with pytest.raises(AblyError) as info:
        decode_frame(frame)
    assert info.value.code == 40000


@pytest.mark.parametrize("frame", ["[" * 100_000, b"\x91" * 100_000], ids=["json", "msgpack"])
def test_absurdly_nested_frames_are_refused_with_40000_not_a_crash(frame: str | bytes) -> None:
    with pytest.raises(AblyError) as info:
        decode_frame(frame)
    assert info.value.code == 40000


def test_absurdly_nested_rest_bodies_are_refused_as_bad_requests() -> None:
    with pytest.raises(AblyError) as info:
        decode_body(b"[" * 100_000, "json")
    assert info.value.status == 400


@pytest.mark.parametrize("body", [b"{", b"\xc1"], ids=["json", "msgpack"])
def test_malformed_rest_bodies_are_refused_as_bad_requests(body: bytes) -> None:
    fmt = "json" if body == b"{" else "msgpack"
    with pytest.raises(AblyError) as info:
        decode_body(body, fmt)
    assert info.value.status == 400
    assert 40000 <= info.value.code < 40100


@pytest.mark.parametrize("data", ["not base64!", "abc", "aGk=aGk="], ids=repr)
def test_invalid_base64_data_is_refused_with_40013(data: str) -> None:
    frame = json.dumps({"action": 15, "messages": [{"data": data, "encoding": "utf-8/base64"}]})
    with pytest.raises(AblyError) as info:
        decode_frame(frame)
    assert (info.value.code, info.value.status) == (40013, 400)


def test_error_info_carries_the_fields_every_sdk_requires() -> None:
    error = AblyError(40010, 400, "bad channel").to_dict()
    assert isinstance(error["message"], str)
    assert type(error["code"]) is int and type(error["statusCode"]) is int
    assert error["href"].endswith("40010")
    assert _nulls(error) == []
