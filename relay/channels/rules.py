"""Channel rules: what a namespace of an app enables (mutable messages, persistence, retention)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ChannelRules", "namespace_of"]


@dataclass(frozen=True, slots=True)
class ChannelRules:
    # Updates, deletes and appends; without it they fail with 93002, as on Ably.
    mutable_messages: bool = True
    persisted: bool = True
    # Messages with extras.push notify the channel's push subscribers (Ably's pushEnabled).
    push_enabled: bool = True
    # Retention (channel_relay.retention): messages older than this many ms, and all but the newest
    # `max_messages` of a channel, are removed in the background. None: kept for ever.
    max_age_ms: int | None = None
    max_messages: int | None = None

    @property
    def retains(self) -> bool:
        """Whether retention removes anything on these channels."""
        return self.max_age_ms is not None or self.max_messages is not None


def namespace_of(channel: str) -> str | None:
    """A channel's namespace: the part before its first ':' ("chat:room" -> "chat")."""
    namespace, sep, _ = channel.partition(":")
    return namespace if sep else None
