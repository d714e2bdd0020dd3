"""A subscriber attached through a qualified channel name (channel_relay.protocol.qualifiers):
it receives the channel's deliveries under the name it attached with, and, with a filter, only
the messages the filter selects."""

from __future__ import annotations

from typing import Any

from channel_relay.channels.filters import MessageFilter
from channel_relay.channels.outgoing import Outgoing, Subscriber
from channel_relay.protocol.actions import Action

__all__ = ["QualifiedSubscriber"]


class QualifiedSubscriber:
    """Stands in the channel's subscriber sets for `inner` attached as `name`."""

    def __init__(self, inner: Subscriber, name: str, message_filter: MessageFilter | None) -> None:
        self.inner = inner
        self.name = name
        self.filter = message_filter
        # The last delivery rewritten, and its rewrite: every frame of one fan-out is encoded
        # once for this subscriber, however the fan-out reaches it.
        self._last: tuple[Outgoing, Outgoing | None] | None = None

    @property
    def connection_id(self) -> str:
        return self.inner.connection_id

    @property
    def echo(self) -> bool:
        return self.inner.echo

    def deliver(self, outgoing: Outgoing) -> None:
        if self._last is None or self._last[0] is not outgoing:
            self._last = (outgoing, self.rewrite(outgoing))
        rewritten = self._last[1]
        if rewritten is not None:
            self.inner.deliver(rewritten)

    def rewrite(self, outgoing: Outgoing) -> Outgoing | None:
        """`outgoing` under this subscriber's name, less the messages its filter drops (None
        when nothing is left)."""
        message = {**outgoing.message, "channel": self.name}
        if self.filter is not None and message.get("action") == Action.MESSAGE:
            kept = self.select(message.get("messages") or [])
            if not kept:
                return None
            message["messages"] = kept
        return Outgoing(message, outgoing.publisher, outgoing.change)

    def select(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if self.filter is None:
            return messages
        return [m for m in messages if self.filter.matches(m)]
