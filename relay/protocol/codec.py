"""ProtocolMessage frames to and from JSON text and msgpack bytes.

Inside the relay a ProtocolMessage is a plain dict with the wire's field names, and message
`data` is `str` or `bytes`: msgpack carries bytes natively, JSON carries them as base64 with a
trailing `base64` step in `encoding`. Decoding a JSON frame turns that step back into bytes, and
encoding for JSON does the reverse, so a payload published over one format reaches a reader of the
other as the same bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Literal

import msgpack

from channel_relay.protocol.errors import AblyError

__all__ = [
    "Format",
    "decode_body",
    "decode_frame",
    "encode_body",
    "encode_frame",
    "from_json_data",
    "to_json_data",
]

Format = Literal["json", "msgpack"]

# allow_nan=False: bare NaN/Infinity is not JSON, and JSON.parse (ably-js) rejects the frame.
_json_encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
# For a reply that echoes a lone surrogate a JSON client sent (in a channel name it named):
# JSON spells it as an escape, where UTF-8 text cannot hold it.
_json_ascii_encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
_packb = msgpack.Packer(use_bin_type=True).pack
_PAYLOAD_LISTS = ("messages", "presence", "annotations")
# What a malformed frame or body raises. RecursionError: the json module recurses per nesting
# level, so a frame of "[[[[..." deep enough would otherwise escape as a crash, not a 40000.
# TypeError: msgpack refuses a map whose key is an array or a map (unhashable).
_UNDECODABLE = (
    TypeError,
    ValueError,
    RecursionError,
    msgpack.ExtraData,
    msgpack.FormatError,
    msgpack.StackError,
)


def decode_frame(frame: bytes | str) -> dict[str, Any]:
    """Decode one WebSocket frame: text frames are JSON, binary frames msgpack.

    Raises AblyError 40000 when the frame is not a well-formed ProtocolMessage object.
    """
    try:
        if isinstance(frame, str):
            value = json.loads(frame)
            if isinstance(value, dict):
                _payloads_from_json(value)
        else:
            value = msgpack.unpackb(frame, raw=False, strict_map_key=False)
    except _UNDECODABLE as exc:
        raise AblyError.bad_request(f"Malformed protocol message: {exc}") from None
    if not isinstance(value, dict):
        raise AblyError.bad_request("Protocol message must be an object")
    return value


def encode_frame(message: dict[str, Any], fmt: Format) -> bytes | str:
    """Encode a ProtocolMessage for a connection speaking `fmt`."""
    if fmt == "msgpack":
        return _packb(message)
    return _json_text(_payloads_to_json(message))


def decode_body(body: bytes, fmt: Format) -> Any:
    """Decode a REST request body; binary data in a JSON body becomes bytes."""
    try:
        if fmt == "msgpack":
            return msgpack.unpackb(body, raw=False, strict_map_key=False)
        value = json.loads(body)
    except _UNDECODABLE as exc:
        raise AblyError(40001, 400, f"Invalid request body: {exc}") from None
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, dict):
            from_json_data(item)
    return value


def encode_body(value: Any, fmt: Format) -> bytes:
    """Encode a REST response body: a message dict, a list of them, or any plain value."""
    if fmt == "msgpack":
        return _packb(value)
    if isinstance(value, list):
        value = [to_json_data(v) if isinstance(v, dict) else v for v in value]
    elif isinstance(value, dict):
        value = to_json_data(value)
    return _json_text(value).encode()


def _json_text(value: Any) -> str:
    """JSON text that is valid UTF-8: a lone surrogate (echoed from what a JSON client sent)
    is spelt as an escape."""
    text = _json_encoder.encode(value)
    if text.isascii():
        return text
    try:
        text.encode()
    except UnicodeEncodeError:
        return _json_ascii_encoder.encode(value)
    return text


def from_json_data(item: dict[str, Any]) -> None:
    """In place: a base64 payload read from JSON becomes bytes, losing its `base64` step."""
    data, encoding = item.get("data"), item.get("encoding")
    if not isinstance(data, str) or not isinstance(encoding, str):
        return
    head, _, last = encoding.rpartition("/")
    if last != "base64":
        return
    try:
        item["data"] = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise AblyError.invalid_message("Message data is not valid base64") from None
    if head:
        item["encoding"] = head
    else:
        del item["encoding"]


def to_json_data(item: dict[str, Any]) -> dict[str, Any]:
    """A copy of a message whose bytes payload is base64 text, as JSON readers expect."""
    data = item.get("data")
    if not isinstance(data, bytes | bytearray):
        return item
    out = dict(item)
    out["data"] = base64.b64encode(data).decode("ascii")
    encoding = item.get("encoding")
    out["encoding"] = f"{encoding}/base64" if encoding else "base64"
    return out


def _payloads_from_json(message: dict[str, Any]) -> None:
    for key in _PAYLOAD_LISTS:
        items = message.get(key)
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict):
                    from_json_data(item)


def _payloads_to_json(message: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] | None = None
    for key in _PAYLOAD_LISTS:
        items = message.get(key)
        if not items:
            continue
        new_items = [to_json_data(item) for item in items]
        if any(a is not b for a, b in zip(new_items, items, strict=True)):
            if converted is None:
                converted = dict(message)
            converted[key] = new_items
    return converted if converted is not None else message
