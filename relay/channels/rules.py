"""Channel rules: what a namespace of an app enables (mutable messages, persistence)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ChannelRules", "namespace_of"]


@dataclass(frozen=True, slots=True)
class ChannelRules:
    # Updates, deletes and appends; without it they fail with 93002, as on Ably.
    mutable_messages: bool = True
    persisted: bool = True


def namespace_of(channel: str) -> str | None:
    """A channel's namespace: the part before its first ':' ("chat:room" -> "chat")."""
    namespace, sep, _ = channel.partition(":")
    return namespace if sep else None
