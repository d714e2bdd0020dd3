"""Checks on what clients send: channel names, messages, sizes. Each failure is an AblyError
with the code Ably's service uses for it."""

from __future__ import annotations

import json
from typing import Any

from channel_relay.protocol.actions import MessageAction, PresenceAction
from channel_relay.protocol.errors import AblyError

__all__ = [
    "MUTATIONS",
    "check_channel_name",
    "message_size",
    "parse_messages",
    "parse_mutation",
    "parse_presence",
]

_MESSAGE_FIELDS = ("id", "name", "data", "encoding", "clientId", "extras")
_MUTATION_FIELDS = ("serial", "name", "data", "encoding", "extras")
_VERSION_FIELDS = ("clientId", "description", "metadata")
# The message actions that change an earlier message: update, delete, append.
MUTATIONS = frozenset({MessageAction.UPDATE, MessageAction.DELETE, MessageAction.APPEND})


def check_channel_name(name: Any) -> str:
    """The name itself when Ably would accept it (non-empty, no leading `[` or `:`, no newline)."""
    if not isinstance(name, str) or not name:
        raise AblyError.invalid_channel_name("Channel name must be a non-empty string")
    if name[0] in "[:":
        raise AblyError.invalid_channel_name(f"Invalid channel name: {name!r} (leading {name[0]})")
    if "\n" in name or "\r" in name:
        raise AblyError.invalid_channel_name("Invalid channel name: contains a newline")
    return name


def message_size(message: dict[str, Any]) -> int:
    """Ably's size of a message: name, clientId, data and extras, in bytes."""
    size = 0
    for key in ("name", "clientId"):
        value = message.get(key)
        if value:
            size += len(value.encode())
    data = message.get("data")
    if isinstance(data, str):
        size += len(data.encode())
    elif isinstance(data, bytes | bytearray):
        size += len(data)
    extras = message.get("extras")
    if extras:
        size += len(json.dumps(extras, separators=(",", ":"), default=_bytes_len))
    return size


def _bytes_len(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "x" * len(value)
    raise TypeError(type(value).__name__)


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
    messages = [_clean(item) for item in raw]
    for item in raw:
        if item.get("action") not in (None, MessageAction.CREATE):
            raise AblyError.invalid_message(
                "An update, delete or append must be published on its own"
            )
    total = sum(message_size(m) for m in messages)
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
        if action not in _PRESENCE_ACTIONS:
            raise AblyError.invalid_message(f"Invalid presence action {action!r}")
        event["action"] = action
        events.append(event)
    total = sum(message_size(e) for e in events)
    if total > max_size:
        raise AblyError.too_large(f"Presence data exceeds the maximum size of {max_size} bytes")
    return events


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
        if not all(isinstance(kept.get(k, ""), str) for k in ("clientId", "description")):
            raise AblyError.invalid_message("Version clientId and description must be strings")
        if not isinstance(kept.get("metadata", {}), dict):
            raise AblyError.invalid_message("Version metadata must be an object")
        message["version"] = kept
    if message_size(message) > max_size:
        raise AblyError.too_large(f"Message exceeds the maximum size of {max_size} bytes")
    return message


def _clean(item: Any, fields: tuple[str, ...] = _MESSAGE_FIELDS) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise AblyError.invalid_message("A message must be an object")
    message = {k: item[k] for k in fields if item.get(k) is not None}
    for key in ("id", "encoding", "serial"):
        if key in message and not isinstance(message[key], str):
            raise AblyError.invalid_message(f"Message {key} must be a string")
    if "name" in message and not isinstance(message["name"], str):
        raise AblyError(40016, 400, "Invalid message name")
    if "clientId" in message and (
        not isinstance(message["clientId"], str) or not message["clientId"]
    ):
        raise AblyError.invalid_client_id("Message clientId must be a non-empty string")
    if "extras" in message and not isinstance(message["extras"], dict):
        raise AblyError(40032, 400, "Invalid message extras field")
    data = message.get("data")
    if isinstance(data, dict | list):
        message["data"] = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        encoding = message.get("encoding")
        message["encoding"] = f"{encoding}/json" if encoding else "json"
    elif data is not None and not isinstance(data, str | bytes):
        raise AblyError.invalid_message("Message data must be a string, binary, object or array")
    return message
