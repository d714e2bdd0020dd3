"""vcdiff deltas for subscribers that attach with `params.delta = 'vcdiff'`, as Ably sends them.

A message goes to such a subscriber as a delta against the message delivered before it on the
channel (`extras.delta = {format: 'vcdiff', from: <that message's id>}`, data the VCDIFF bytes,
`vcdiff` appended to the encoding, after `utf-8` for string data) when the subscriber holds that
message: it received the channel's previous fan-out. Everyone else, and every message after a
delivery that is not a plain fan-out (a change, a summary), gets the whole message: an SDK whose
base is not the one named would discard the delta and re-attach (40018).

The base is the previous message's payload as it went on the wire (string data as UTF-8), which
is what ably-js keeps as the base to decode against.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from channel_relay.channels.outgoing import Outgoing, Subscriber
from channel_relay.protocol import vcdiff

__all__ = ["DeltaChain", "Deltas"]


class Deltas:
    """Per channel: who wants deltas, who holds the previous message, and what it was."""

    def __init__(self) -> None:
        self.wanted: set[Subscriber] = set()
        self._synced: set[Subscriber] = set()
        # The last message of the last fan-out; its base (`_previous`) is worked out only when
        # a subscriber wants deltas, not on every publish of a channel where none does.
        self._last_message: dict[str, Any] | None = None

    @property
    def _previous(self) -> tuple[str, bytes] | None:
        return None if self._last_message is None else _last(self._last_message)

    def want(self, subscriber: Subscriber, *, replaying: bool = False) -> None:
        """`subscriber` gets deltas from now on. Its next live message goes whole, unless a
        replay up to the channel's last delivery is on its way first: that ends with the
        message the next delta is made against (see DeltaChain)."""
        self.wanted.add(subscriber)
        if replaying and self._previous is not None:
            self._synced.add(subscriber)
        else:
            self._synced.discard(subscriber)

    def drop(self, subscriber: Subscriber) -> None:
        self.wanted.discard(subscriber)
        self._synced.discard(subscriber)

    def reset(self) -> None:
        """A delivery other than a fan-out reached subscribers: the next message goes whole."""
        self._last_message = None
        self._synced.clear()

    def chooser(
        self,
        messages: list[dict[str, Any]],
        whole: Outgoing,
        make: Callable[[list[dict[str, Any]]], Outgoing],
    ) -> Callable[[Subscriber], Outgoing]:
        """For one fan-out of `messages`: which Outgoing each subscriber gets (`make` builds
        the delta form, once, if anyone can take it). Call `skipped` for subscribers passed
        over, and `advance` once the fan-out is done."""
        delta: Outgoing | None = None
        previous = self._previous if self.wanted and self._synced else None
        if previous is not None:
            encoded = _as_deltas(previous, messages)
            if encoded is not None:
                delta = make(encoded)

        def choose(subscriber: Subscriber) -> Outgoing:
            if subscriber not in self.wanted:
                return whole
            chosen = delta if delta is not None and subscriber in self._synced else whole
            self._synced.add(subscriber)
            return chosen

        return choose

    def skipped(self, subscriber: Subscriber) -> None:
        self._synced.discard(subscriber)

    def advance(self, messages: list[dict[str, Any]]) -> None:
        self._last_message = messages[-1]


def _last(last: dict[str, Any]) -> tuple[str, bytes] | None:
    """The base the next delta is made against: the last message's id and payload. None after
    an ephemeral message, which a replay would not send, so no delta may rest on it."""
    payload = _payload(last)
    if payload is None or "id" not in last or (last.get("extras") or {}).get("ephemeral"):
        return None
    return last["id"], payload


def _payload(message: dict[str, Any]) -> bytes | None:
    data = message.get("data")
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, bytes):
        return data
    return None


def _as_deltas(
    previous: tuple[str, bytes], messages: list[dict[str, Any]]
) -> list[dict[str, Any]] | None:
    """`messages`, each as a delta against the one before (the first against `previous`);
    None when one of them has no payload a delta can carry."""
    out = []
    base_id, base = previous
    for message in messages:
        target = _payload(message)
        if target is None or "id" not in message:
            return None
        encoding = message.get("encoding")
        steps = [encoding] if encoding else []
        if isinstance(message["data"], str):
            steps.append("utf-8")
        steps.append("vcdiff")
        extras = dict(message.get("extras") or {})
        extras["delta"] = {"format": "vcdiff", "from": base_id}
        out.append(
            {
                **message,
                "data": vcdiff.encode(base, target),
                "encoding": "/".join(steps),
                "extras": extras,
            }
        )
        base_id, base = message["id"], target
    return out


class DeltaChain:
    """Deltas along one replay to one subscriber: each message against the one replayed before
    it (the first whole), as live deliveries would have been."""

    def __init__(self) -> None:
        self._previous: tuple[str, bytes] | None = None

    def apply(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = messages
        if self._previous is not None:
            out = _as_deltas(self._previous, messages) or messages
        self._previous = _last(messages[-1])
        return out
