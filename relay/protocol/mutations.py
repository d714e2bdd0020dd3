"""Updates, deletes and appends applied to a message: the new aggregate, and what a subscriber
that already has the message receives. Pure functions over wire dicts."""

from __future__ import annotations

from typing import Any

from channel_relay.protocol.actions import MessageAction
from channel_relay.protocol.errors import AblyError

__all__ = ["apply_mutation"]

# Fields that identify a message and travel unchanged with every operation on it.
_IDENTITY = ("id", "name", "clientId", "connectionId", "timestamp", "serial")
_MIXED = ("name", "data", "encoding", "extras")


def apply_mutation(
    current: dict[str, Any], op: dict[str, Any], version: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(new aggregate, the operation as delivered to a subscriber that has the message).

    Update and delete mix the fields the operation carries (name, data, extras) over the
    message; the aggregate is also what subscribers receive. Append concatenates data (string
    to string or bytes to bytes, 40013 otherwise) and replaces extras with the operation's
    (none removes them); subscribers that have the message receive only the fragment, and the
    aggregate reads as a message.update with the whole data.
    """
    action = op["action"]
    if action == MessageAction.APPEND:
        return _append(current, op, version)
    aggregate = dict(current)
    if "data" in op:
        aggregate.pop("encoding", None)
    for key in _MIXED:
        if key in op:
            aggregate[key] = op[key]
    aggregate["action"] = action
    aggregate["version"] = version
    return aggregate, aggregate


def _append(
    current: dict[str, Any], op: dict[str, Any], version: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    fragment = op.get("data")
    base = current.get("data")
    if op.get("encoding") or current.get("encoding"):
        raise AblyError.invalid_message("Append requires plain string or binary data")
    if fragment is None:
        fragment = b"" if isinstance(base, bytes) else ""
    if base is None:
        base = b"" if isinstance(fragment, bytes) else ""
    if type(base) is not type(fragment):
        raise AblyError.invalid_message(
            "Append data must be of the same type as the message data (string or binary)"
        )
    aggregate = dict(current)
    aggregate["data"] = base + fragment
    aggregate["action"] = MessageAction.UPDATE
    aggregate["version"] = version
    aggregate.pop("extras", None)
    operation = {k: current[k] for k in _IDENTITY if k in current}
    operation["action"] = MessageAction.APPEND
    operation["data"] = fragment
    operation["version"] = version
    if "extras" in op:
        aggregate["extras"] = op["extras"]
        operation["extras"] = op["extras"]
    return aggregate, operation
