"""A ProtocolMessage on its way to many subscribers, encoded at most once per wire format."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Outgoing", "Subscriber"]


class Outgoing:
    """One delivery shared by every subscriber of a channel.

    `frames` caches the bytes a transport writes, one entry per wire format, filled by the first
    subscriber of that format: the fan-out cost per subscriber is a dict lookup and a write.
    """

    __slots__ = ("change", "frames", "message", "publisher")

    def __init__(
        self,
        message: dict[str, Any],
        publisher: str | None,
        change: tuple[int, int] | None = None,
    ) -> None:
        self.message = message
        self.publisher = publisher
        # For an update, delete or append: (seq of the message changed, seq of this version).
        self.change = change
        self.frames: dict[str, bytes] = {}


class Subscriber(Protocol):
    """What the channel layer needs of a realtime connection."""

    connection_id: str
    echo: bool

    def deliver(self, outgoing: Outgoing) -> None:
        """Queue the delivery for sending; must not block or await."""
