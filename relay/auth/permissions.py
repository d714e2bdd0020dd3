"""Who may change a message: Ably's message-update/delete capabilities, own and any."""

from __future__ import annotations

from typing import Any

from channel_relay.auth.identity import Identity
from channel_relay.protocol.actions import MessageAction
from channel_relay.protocol.errors import AblyError

__all__ = ["authorize_change", "may_change_some"]

# The capability operations that allow changing anyone's message, and one's own, per kind.
_OPERATIONS = {
    kind: (f"message-{kind}-any", f"message-{kind}-own") for kind in ("update", "delete")
}


def authorize_change(
    identity: Identity, channel: str, action: int, original: dict[str, Any]
) -> None:
    """Raise unless `identity` may apply `action` (update, delete or append) to `original`.

    `message-update-any` / `message-delete-any` allow changing anyone's message; the `-own`
    forms only a message whose clientId is the caller's (40166 for a caller without one).
    Appends count as updates.
    """
    kind = _kind(action)
    any_op, own_op = _OPERATIONS[kind]
    capability = identity.capability
    if capability.allows(channel, any_op):
        return
    if capability.allows(channel, own_op):
        own = identity.client_id
        if own is None or own == "*":
            raise AblyError(40166, 401, "Unidentified client cannot modify own messages")
        if original.get("clientId") == own:
            return
    raise _forbidden(kind, channel)


def may_change_some(identity: Identity, channel: str, action: int) -> None:
    """Raise unless `identity` may apply `action` to at least its own messages of `channel`.
    Checked before the message is looked up, so a caller that may change nothing learns
    nothing of which serials exist (nor loads the channel)."""
    kind = _kind(action)
    any_op, own_op = _OPERATIONS[kind]
    capability = identity.capability
    if not (capability.allows(channel, any_op) or capability.allows(channel, own_op)):
        raise _forbidden(kind, channel)


def _kind(action: int) -> str:
    return "delete" if action == MessageAction.DELETE else "update"


def _forbidden(kind: str, channel: str) -> AblyError:
    return AblyError.forbidden(f"Unable to {kind} this message on channel {channel}: not permitted")
