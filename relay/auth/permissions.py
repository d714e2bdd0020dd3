"""Who may change a message: Ably's message-update/delete capabilities, own and any."""

from __future__ import annotations

from typing import Any

from channel_relay.auth.identity import Identity
from channel_relay.protocol.actions import MessageAction
from channel_relay.protocol.errors import AblyError

__all__ = ["authorize_change"]


def authorize_change(
    identity: Identity, channel: str, action: int, original: dict[str, Any]
) -> None:
    """Raise unless `identity` may apply `action` (update, delete or append) to `original`.

    `message-update-any` / `message-delete-any` allow changing anyone's message; the `-own`
    forms only a message whose clientId is the caller's (40166 for a caller without one).
    Appends count as updates.
    """
    kind = "delete" if action == MessageAction.DELETE else "update"
    capability = identity.capability
    if capability.allows(channel, f"message-{kind}-any"):
        return
    if capability.allows(channel, f"message-{kind}-own"):
        own = identity.client_id
        if own is None or own == "*":
            raise AblyError(40166, 401, "Unidentified client cannot modify own messages")
        if original.get("clientId") == own:
            return
    raise AblyError.forbidden(f"Unable to {kind} this message on channel {channel}: not permitted")
