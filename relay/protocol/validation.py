"""Checks on what clients send: channel names, messages, sizes. Each failure is an AblyError
with the code Ably's service uses for it.

Whatever is accepted here is stored and then delivered to readers of either wire format, so a
value only one format can carry is refused on the way in: strings must be valid Unicode (JSON
can spell a lone surrogate, UTF-8 cannot), numbers finite (msgpack carries NaN, JSON does not)
and integers within 64 bits (JSON has no bound, msgpack has), and `extras` and object `data`
must be plain JSON (msgpack can carry binary and extension types there, JSON cannot).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from channel_relay.protocol.actions import MessageAction, PresenceAction
from channel_relay.protocol.errors import AblyError

__all__ = [
    "MUTATIONS",
    "check_channel_name",
    "check_plain",
    "is_int",
    "message_size",
    "parse_annotations",
    "parse_messages",
    "parse_mutation",
    "parse_presence",
    "valid_text",
]

_MESSAGE_FIELDS = ("id", "name", "data", "encoding", "clientId", "extras")
_MUTATION_FIELDS = ("serial", "name", "data", "encoding", "extras")
_VERSION_FIELDS = ("clientId", "description", "metadata")
# The message actions that change an earlier message: update, delete, append.
MUTATIONS = frozenset({MessageAction.UPDATE, MessageAction.DELETE, MessageAction.APPEND})


# Nesting deeper than this in extras or object data is refused: every reader re-encodes it, and
# the encoders recurse per level.
_MAX_DEPTH = 64
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


def is_int(value: Any) -> bool:
    """An integer on the wire (a bool is not one, though Python says so)."""
    return isinstance(value, int) and not isinstance(value, bool)


def valid_text(value: str) -> bool:
    """Whether a string is valid Unicode (UTF-8 encodable: no lone surrogates)."""
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def check_plain(value: Any, depth: int = 0) -> str | None:
    """Why `value` is not plain JSON both wire formats can carry alike, or None when it is."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return None if valid_text(value) else "a string is not valid Unicode"
    if isinstance(value, int):
        return None if _INT_MIN <= value <= _INT_MAX else "an integer does not fit 64 bits"
    if isinstance(value, float):
        return None if math.isfinite(value) else "a number is not finite"
    if depth >= _MAX_DEPTH:
        return f"nesting deeper than {_MAX_DEPTH} levels"
    if isinstance(value, list):
        for item in value:
            reason = check_plain(item, depth + 1)
            if reason is not None:
                return reason
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not valid_text(key):
                return "an object key is not a valid string"
            reason = check_plain(item, depth + 1)
            if reason is not None:
                return reason
        return None
    return f"a {type(value).__name__} value has no JSON form"


def check_channel_name(name: Any) -> str:
    """The name itself when Ably would accept it (non-empty valid Unicode, no leading `[` or
    `:`, no newline)."""
    if not isinstance(name, str) or not name:
        raise AblyError.invalid_channel_name("Channel name must be a non-empty string")
    if not valid_text(name):
        raise AblyError.invalid_channel_name("Invalid channel name: not valid Unicode")
    if name[0] in "[:":
        raise AblyError.invalid_channel_name(f"Invalid channel name: {name!r} (leading {name[0]})")
    if "\n" in name or "\r" in name:
        raise AblyError.invalid_channel_name("Invalid channel name: contains a newline")
    return name


def message_size(message: dict[str, Any]) -> int:
    """Ably's size of a message: name, clientId, data and extras, in bytes."""
    # Twice per publish (its limit, then live stats): an ASCII string's length is its size
    # in UTF-8, without encoding it.
    size = 0
    name = message.get("name")
    if name:
        size += len(name) if name.isascii() else len(name.encode())
    client_id = message.get("clientId")
    if client_id:
        size += len(client_id) if client_id.isascii() else len(client_id.encode())
    data = message.get("data")
    if isinstance(data, str):
        size += len(data) if data.isascii() else len(data.encode())
    elif isinstance(data, bytes | bytearray):
        size += len(data)
    extras = message.get("extras")
    if extras:
        size += len(json.dumps(extras, separators=(",", ":")))
    return size


def parse_messages(raw: Any, max_size: int) -> list[dict[str, Any]]:
    """Validate published messages (already decoded from the wire) and return clean copies.

    Only the fields a publisher may set are kept. Object or array data becomes a JSON string with
    a `json` encoding step, as Ably's REST API does. The total size of the messages must fit
    `max_size` (40009).
    """
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise AblyError.invalid_message("No messages to publish")
    # Once per publish: no comprehension's frame.
    messages = list(map(_clean, raw))
    total = 0
    for item, message in zip(raw, messages, strict=True):
        action = item.get("action")
        if action is not None and (not is_int(action) or action != MessageAction.CREATE):
            raise AblyError.invalid_message(
                "An update, delete or append must be published on its own"
            )
        total += message_size(message)
    if total > max_size:
        raise AblyError.too_large(
            f"Maximum size of messages that can be published at once exceeded "
            f"(was {total} bytes; limit is {max_size} bytes)"
        )
    return messages


_PRESENCE_FIELDS = ("id", "clientId", "data", "encoding", "extras")
_PRESENCE_ACTIONS = frozenset({PresenceAction.ENTER, PresenceAction.LEAVE, PresenceAction.UPDATE})


def parse_presence(raw: Any, max_size: int) -> list[dict[str, Any]]:
    """Validate the presence events of a PRESENCE message: enter, update or leave, with the
    same field rules (and combined size limit) as messages."""
    if not isinstance(raw, list) or not raw:
        raise AblyError.invalid_message("No presence events")
    events = []
    for item in raw:
        event = _clean(item, _PRESENCE_FIELDS)
        action = item.get("action")
        if not is_int(action) or action not in _PRESENCE_ACTIONS:
            raise AblyError.invalid_message(f"Invalid presence action {action!r}")
        event["action"] = action
        events.append(event)
    total = sum(message_size(e) for e in events)
    if total > max_size:
        raise AblyError.too_large(f"Presence data exceeds the maximum size of {max_size} bytes")
    return events


_ANNOTATION_FIELDS = ("id", "clientId", "name", "data", "encoding", "extras")
# "namespace:aggregation.vN": the aggregations Ably summarises (channel_relay.channels.summaries).
_ANNOTATION_TYPE = re.compile(r"^[^:]+:(total|flag|distinct|unique|multiple)\.v\d+$")


def parse_annotations(raw: Any, max_size: int) -> list[dict[str, Any]]:
    """Validate published annotations: each a create (0) or delete (1) of a `type` Ably
    aggregates, for the message at `messageSerial`, with the same field rules (and combined
    size limit) as messages; `count` (multiple.v1) a positive integer."""
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise AblyError.invalid_message("No annotations to publish")
    annotations = []
    for item in raw:
        annotation = _clean(item, _ANNOTATION_FIELDS)
        action = item.get("action", 0)
        if not is_int(action) or action not in (0, 1):
            raise AblyError.invalid_message(f"Invalid annotation action {action!r}")
        serial = item.get("messageSerial")
        if not isinstance(serial, str) or not serial:
            raise AblyError.invalid_param("An annotation needs the messageSerial it annotates")
        kind = item.get("type")
        if not isinstance(kind, str) or _ANNOTATION_TYPE.match(kind) is None:
            raise AblyError.invalid_param(
                f"Invalid annotation type {kind!r}: expected namespace:aggregation.v1 with an "
                "aggregation of total, flag, distinct, unique or multiple"
            )
        count = item.get("count")
        if count is not None and (not is_int(count) or count < 1):
            raise AblyError.invalid_param("Annotation count must be a positive integer")
        annotation.update(action=action, messageSerial=serial, type=kind)
        if count is not None:
            annotation["count"] = count
        annotations.append(annotation)
    total = sum(message_size(a) for a in annotations)
    if total > max_size:
        raise AblyError.too_large(f"Annotations exceed the maximum size of {max_size} bytes")
    return annotations


def parse_mutation(item: Any, max_size: int) -> dict[str, Any]:
    """Validate an update, delete or append: the target `serial` (40003 without one), the
    fields it changes, `action` and `version` (description, metadata, clientId)."""
    message = _clean(item, _MUTATION_FIELDS)
    message["action"] = item["action"]
    serial = message.get("serial")
    if not isinstance(serial, str) or not serial:
        raise AblyError.invalid_param("This message lacks a serial")
    version = item.get("version")
    if version is not None and not isinstance(version, dict):
        raise AblyError.invalid_message("Message version must be an object")
    if version:
        kept = {k: version[k] for k in _VERSION_FIELDS if version.get(k) is not None}
        if not all(
            isinstance(text := kept.get(k, ""), str) and valid_text(text)
            for k in ("clientId", "description")
        ):
            raise AblyError.invalid_message("Version clientId and description must be strings")
        metadata = kept.get("metadata", {})
        if not isinstance(metadata, dict) or check_plain(metadata) is not None:
            raise AblyError.invalid_message("Version metadata must be a plain JSON object")
        message["version"] = kept
    if message_size(message) > max_size:
        raise AblyError.too_large(f"Message exceeds the maximum size of {max_size} bytes")
    return message


def _clean(item: Any, fields: tuple[str, ...] = _MESSAGE_FIELDS) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise AblyError.invalid_message("A message must be an object")
    message = {}
    for key in fields:
        value = item.get(key)
        if value is not None:
            message[key] = value
    for key in ("id", "encoding", "serial"):
        if key in message and not _is_text(message[key]):
            raise AblyError.invalid_message(f"Message {key} must be a valid string")
    if "name" in message and not _is_text(message["name"]):
        raise AblyError(40016, 400, "Invalid message name")
    if "clientId" in message and (not _is_text(message["clientId"]) or not message["clientId"]):
        raise AblyError.invalid_client_id("Message clientId must be a non-empty string")
    if "extras" in message:
        extras = message["extras"]
        reason = "not an object" if not isinstance(extras, dict) else check_plain(extras)
        if reason is not None:
            raise AblyError(40032, 400, f"Invalid message extras field: {reason}")
    data = message.get("data")
    if isinstance(data, dict | list):
        reason = check_plain(data)
        if reason is not None:
            raise AblyError.invalid_message(f"Invalid message data: {reason}")
        message["data"] = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        encoding = message.get("encoding")
        message["encoding"] = f"{encoding}/json" if encoding else "json"
    elif isinstance(data, str):
        if not valid_text(data):
            raise AblyError.invalid_message("Invalid message data: not valid Unicode")
    elif isinstance(data, bytearray):
        message["data"] = bytes(data)
    elif data is not None and not isinstance(data, bytes):
        raise AblyError.invalid_message("Message data must be a string, binary, object or array")
    return message


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and valid_text(value)
