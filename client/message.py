"""Messages and presence messages as callers see them: decoded data, typed fields.

On the wire a payload is `data` plus an `encoding` chain ("json", "utf-8", "base64", joined by
"/"). `Message.from_wire` undoes the chain (so JSON objects published by ably-js arrive as dicts)
and `Message.to_wire` builds it (dicts and lists travel as JSON text with encoding "json", byte
for byte as ably-js sends them: see codecs.jsjson). Binary data is bytes; the wire codec in
relay.protocol.codec already turns JSON base64 into bytes.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from channel_relay.client.codecs import jsjson
from channel_relay.protocol.actions import MessageAction, PresenceAction

__all__ = ["Message", "PresenceMessage", "decode_data", "encode_data"]


def decode_data(data: Any, encoding: str | None) -> tuple[Any, str | None]:
    """Undo the encoding chain right to left; stop at the first step we do not know."""
    if not encoding:
        return data, None
    steps = encoding.split("/")
    while steps:
        step = steps[-1]
        try:
            if step == "json" and isinstance(data, str | bytes | bytearray):
                data = json.loads(data)
            elif step == "base64" and isinstance(data, str):
                data = base64.b64decode(data)
            elif step in ("utf-8", "utf8") and isinstance(data, bytes | bytearray):
                data = bytes(data).decode()
            else:
                break
        except (ValueError, UnicodeDecodeError):
            break
        steps.pop()
    return data, "/".join(steps) or None


def encode_data(data: Any, encoding: str | None = None) -> tuple[Any, str | None]:
    """Data ready for the wire: str, bytes and None pass; dicts and lists become JSON text."""
    if isinstance(data, dict | list):
        text = jsjson.dumps(data)
        return text, f"{encoding}/json" if encoding else "json"
    if isinstance(data, bytearray):
        return bytes(data), encoding
    if data is None or isinstance(data, str | bytes):
        return data, encoding
    raise TypeError(f"unsupported message data type {type(data).__name__} (str, bytes, dict, list)")


@dataclass(slots=True)
class Message:
    """One channel message. `action` is a MessageAction; `serial` is the channel serial of the
    original message and `version` the dict of its latest version (serial, clientId, ...)."""

    name: str | None = None
    data: Any = None
    extras: dict[str, Any] | None = None
    id: str | None = None
    client_id: str | None = None
    connection_id: str | None = None
    timestamp: int | None = None
    encoding: str | None = None
    serial: str | None = None
    action: MessageAction = MessageAction.CREATE
    version: dict[str, Any] = field(default_factory=dict)

    @property
    def version_serial(self) -> str | None:
        """The serial of this version: version.serial, or the message serial for a create."""
        return self.version.get("serial") or self.serial

    @classmethod
    def from_wire(cls, raw: dict[str, Any], parent: dict[str, Any] | None = None, index: int = 0):
        """Decode one wire message; `parent` (the ProtocolMessage) fills id/connectionId/
        timestamp when the message lacks them, as the SDKs do."""
        data, encoding = decode_data(raw.get("data"), raw.get("encoding"))
        action = raw.get("action", 0)
        try:
            action = MessageAction(action)
        except ValueError:
            action = MessageAction.CREATE
        msg = cls(
            name=raw.get("name"),
            data=data,
            extras=raw.get("extras"),
            id=raw.get("id"),
            client_id=raw.get("clientId"),
            connection_id=raw.get("connectionId"),
            timestamp=raw.get("timestamp"),
            encoding=encoding,
            serial=raw.get("serial"),
            action=action,
            version=dict(raw.get("version") or {}),
        )
        if parent is not None:
            if not msg.id and parent.get("id"):
                msg.id = f"{parent['id']}:{index}"
            msg.connection_id = msg.connection_id or parent.get("connectionId")
            msg.timestamp = msg.timestamp or parent.get("timestamp")
        return msg

    def to_wire(self) -> dict[str, Any]:
        """The publishable fields of this message, encoded for the wire."""
        out: dict[str, Any] = {}
        data, encoding = encode_data(self.data, self.encoding)
        if self.id is not None:
            out["id"] = self.id
        if self.name is not None:
            out["name"] = self.name
        if data is not None:
            out["data"] = data
        if encoding:
            out["encoding"] = encoding
        if self.extras is not None:
            out["extras"] = self.extras
        if self.client_id is not None:
            out["clientId"] = self.client_id
        return out


@dataclass(slots=True)
class PresenceMessage:
    """One presence event or member. `key` (clientId:connectionId) identifies a member."""

    action: PresenceAction
    client_id: str | None = None
    connection_id: str | None = None
    data: Any = None
    id: str | None = None
    timestamp: int | None = None
    encoding: str | None = None
    extras: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        return f"{self.client_id}:{self.connection_id}"

    @classmethod
    def from_wire(cls, raw: dict[str, Any], parent: dict[str, Any] | None = None, index: int = 0):
        data, encoding = decode_data(raw.get("data"), raw.get("encoding"))
        try:
            action = PresenceAction(raw.get("action", 1))
        except ValueError:
            action = PresenceAction.PRESENT
        msg = cls(
            action=action,
            client_id=raw.get("clientId"),
            connection_id=raw.get("connectionId"),
            data=data,
            id=raw.get("id"),
            timestamp=raw.get("timestamp"),
            encoding=encoding,
            extras=raw.get("extras"),
        )
        if parent is not None:
            if not msg.id and parent.get("id"):
                msg.id = f"{parent['id']}:{index}"
            msg.connection_id = msg.connection_id or parent.get("connectionId")
            msg.timestamp = msg.timestamp or parent.get("timestamp")
        return msg
