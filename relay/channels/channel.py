"""A channel: numbers what is published, commits it, then delivers it to subscribers in order."""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from channel_relay.channels.mutations import apply_mutation, is_mutated
from channel_relay.channels.outgoing import Outgoing, Subscriber
from channel_relay.channels.presence import Presence
from channel_relay.channels.rules import ChannelRules
from channel_relay.protocol.actions import Action, MessageAction
from channel_relay.protocol.errors import AblyError
from channel_relay.protocol.serials import format_serial, parse_serial
from channel_relay.protocol.validation import message_size
from channel_relay.store.base import (
    UNSTORED,
    AppendBatch,
    ChannelLog,
    Store,
    StoredMessage,
    StoredVersion,
)

if TYPE_CHECKING:
    from channel_relay.faults import Faults
    from channel_relay.metrics import Metrics

__all__ = ["Channel", "PublishDone", "SubscriberView"]

log = logging.getLogger(__name__)

PublishDone = Callable[[list[str | None] | None, AblyError | None], None]
"""Called once a publish is durable, with its serials (one per message, None for an ephemeral
one), or with the error."""

# Client-supplied message ids remembered in memory; older ones are found in the store.
_RECENT_IDS = 10_000
# Aggregates of recently changed messages, so a stream of appends never reads the store.
_RECENT_AGGREGATES = 1_000


@dataclass(slots=True)
class SubscriberView:
    """Where a subscriber's view of the channel starts: it has seen (or is being replayed)
    every message after `start_seq`. A change to an older message reaches it first as the
    whole aggregate (message.update), after which the message is `adopted` and its further
    appends arrive as fragments."""

    start_seq: int
    adopted: set[int] = field(default_factory=set)


class Channel:
    """The live state of one channel of one app.

    Serials are assigned here, synchronously, in the order publishes arrive; the store commits
    in that same order and calls back in it, so delivery order is serial order for everyone.
    """

    def __init__(
        self, app_id: str, name: str, log_: ChannelLog, store: Store, rules: ChannelRules
    ) -> None:
        self.app_id = app_id
        self.name = name
        self.log = log_
        self.store = store
        self.rules = rules
        self.subscribers: dict[Subscriber, SubscriberView] = {}
        # The last seq handed to subscribers: an attach starts after it, so a late joiner's
        # history (untilAttach) and its live stream meet without a gap or an overlap.
        self.delivered_seq = log_.last_seq
        self._last_timestamp = 0
        self._recent_ids: OrderedDict[str, str] = OrderedDict()
        self._aggregates: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self.presence = Presence(self)
        # Every attached connection and its granted modes (occupancy).
        self.attached: dict[Subscriber, int] = {}
        # Injected faults (sandbox relays and the pytest plugin only): see channel_relay.faults.
        self.faults: Faults | None = None
        # Counters of publishes and deliveries (channel_relay.metrics), when the relay keeps them.
        self.metrics: Metrics | None = None
        # Told of every committed publish (push notifications for extras.push).
        self.on_published: Callable[[Channel, list[dict[str, Any]]], None] | None = None
        # Publishes and changes under way (from their start to their completion): a channel
        # with any is never unloaded (channel_relay.channels.registry).
        self.busy = 0
        # The registry's sweep generation when the channel was last looked up.
        self.touched = 0

    @property
    def stored(self) -> bool:
        """Whether the channel has a log in the store: one is created by the first write, so
        reading or subscribing to a name creates nothing on disk."""
        return self.log.channel_id != UNSTORED

    def stored_as(self, log_: ChannelLog) -> None:
        """The channel's log has been created (it had only a name in memory until now)."""
        self.log = log_
        self.delivered_seq = max(self.delivered_seq, log_.last_seq)

    def idle(self) -> bool:
        """Nothing would be lost by unloading the channel: nobody is attached or subscribed,
        it has no presence, and nothing is being published."""
        presence = self.presence
        return not (
            self.busy
            or self.subscribers
            or self.attached
            or presence.members
            or presence.pending()
            or presence.subscribers
        )

    def submit(self, batch: AppendBatch) -> None:
        """Hand a batch to the store; the channel counts as busy until it completes."""
        self.busy += 1
        done = batch.done

        def completed(error: BaseException | None) -> None:
            self.busy -= 1
            done(error)

        batch.done = completed
        self.store.submit(batch)

    @property
    def serial(self) -> str:
        """The serial of the last event delivered on the channel: where an attach starts."""
        return format_serial(self.log.epoch, self.delivered_seq)

    def subscribe(
        self,
        subscriber: Subscriber,
        start_seq: int | None = None,
        view: SubscriberView | None = None,
    ) -> None:
        """Deliver to `subscriber` from now on; it has seen the log up to `start_seq`
        (by default everything delivered so far). A resumed subscriber passes the `view` it
        had before its socket dropped, so what it already holds is not sent whole again."""
        start = self.delivered_seq if start_seq is None else start_seq
        self.subscribers[subscriber] = view if view is not None else SubscriberView(start)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.pop(subscriber, None)

    def _now(self) -> int:
        # Timestamps never go backwards within a channel, so time bounds follow seq order.
        now = max(int(time.time() * 1000), self._last_timestamp)
        self._last_timestamp = now
        return now

    def _next_seq(self) -> int:
        self.log.last_seq += 1
        return self.log.last_seq

    # Publishing

    async def publish(
        self,
        messages: list[dict[str, Any]],
        done: PublishDone,
        *,
        connection_id: str | None = None,
        id_base: str | None = None,
    ) -> None:
        """Number, store and (after commit) deliver `messages`, then call `done`.

        `messages` are validated wire dicts; the channel stamps serial, timestamp, action and,
        where missing, an id "<id_base>:<index>" and the publisher's connectionId. Messages
        whose client-supplied id was published before are not stored again: `done` gets their
        original serials (idempotent publishing). Messages with `extras.ephemeral` are
        delivered but never stored, and have no serial.
        """
        if self.faults is not None:
            self.faults.check_publish(self.app_id, self.name)
        self.busy += 1
        try:
            # Only client-supplied ids need a look-up (idempotent publishing); most publishes
            # have none, and skip the await.
            known = await self._known_ids(messages) if any("id" in m for m in messages) else {}
        finally:
            self.busy -= 1
        if id_base is None:
            id_base = secrets.token_urlsafe(12)
        now = self._now()
        serials: list[str | None] = []
        stored: list[StoredMessage] = []
        delivered: list[dict[str, Any]] = []
        explicit: list[tuple[str, int]] = []
        for index, message in enumerate(messages):
            mid = message.get("id")
            if mid is not None and mid in known:
                serials.append(known[mid])
                continue
            if mid is None:
                message["id"] = f"{id_base}:{index}"
            if connection_id is not None:
                message["connectionId"] = connection_id
            message["timestamp"] = now
            message["action"] = MessageAction.CREATE
            delivered.append(message)
            if _is_ephemeral(message):
                serials.append(None)
                continue
            seq = self._next_seq()
            serial = format_serial(self.log.epoch, seq)
            message["serial"] = serial
            if mid is not None:
                explicit.append((mid, seq))
                self._remember(mid, serial)
            serials.append(serial)
            stored.append(StoredMessage(seq, message))

        def committed(error: BaseException | None) -> None:
            if error is not None:
                done(None, AblyError.internal(f"Message could not be stored: {error}"))
                return
            if stored:
                self.delivered_seq = stored[-1].seq
            if self.metrics is not None and delivered:
                self.metrics.publishes.inc(len(delivered))
            if delivered:
                self._fan_out_when_due(lambda: self._fan_out(delivered, connection_id))
                if self.on_published is not None:
                    self.on_published(self, delivered)
            done(serials, None)

        # Even a publish with nothing to store goes through the store's queue, so that its
        # completion keeps its place among the publisher's others (ACKs stay in order).
        self.submit(AppendBatch(self.log.channel_id, stored, explicit, committed))

    async def mutate(
        self,
        op: dict[str, Any],
        done: PublishDone,
        *,
        authorize: Callable[[dict[str, Any]], None],
        client_id: str | None,
        max_size: int,
        connection_id: str | None = None,
    ) -> None:
        """Apply an update, delete or append (`op`, validated) to the message at `op["serial"]`.

        `authorize` sees the current message and raises when the caller may not change it.
        `done` gets the new version serial. 93002 when the channel's rules do not enable
        mutable messages; 40400 for a serial that names no message of this channel; 40009 when
        the result would exceed `max_size`.
        """
        if not self.rules.mutable_messages:
            raise AblyError(
                93002, 400, "Message updates, deletes and appends are not enabled on this channel"
            )
        parsed = parse_serial(op["serial"])
        if parsed is None or parsed[0] != self.log.epoch:
            raise AblyError.not_found(f"No message with serial {op['serial']!r}")
        target = parsed[1]
        self.busy += 1
        try:
            current = await self.message(target)
        finally:
            self.busy -= 1
        if current is None:
            raise AblyError.not_found(f"No message with serial {op['serial']!r}")
        authorize(current)
        first_change = not is_mutated(current)
        version: dict[str, Any] = dict(op.get("version") or {})
        if client_id is not None and client_id != "*":
            version["clientId"] = client_id
        version["timestamp"] = self._now()
        # Numbered before applying, so the version carries its own serial.
        seq = self.log.last_seq + 1
        version["serial"] = format_serial(self.log.epoch, seq)
        aggregate, operation = apply_mutation(current, op, version)
        if message_size(aggregate) > max_size:
            raise AblyError.too_large(f"Message would exceed the maximum size of {max_size} bytes")
        self._next_seq()
        self._keep_aggregate(target, aggregate)
        versions = [StoredVersion(seq, target, operation)]
        if first_change:
            versions.insert(0, StoredVersion(target, target, current))

        def committed(error: BaseException | None) -> None:
            if error is not None:
                done(None, AblyError.internal(f"Message could not be stored: {error}"))
                return
            self.delivered_seq = seq
            self._fan_out_when_due(
                lambda: self._fan_out_change(target, seq, operation, aggregate, connection_id)
            )
            done([version["serial"]], None)

        self.submit(
            AppendBatch(
                self.log.channel_id,
                (),
                (),
                committed,
                versions=versions,
                aggregates=[StoredMessage(target, aggregate)],
            )
        )

    async def message(self, seq: int) -> dict[str, Any] | None:
        """The latest aggregate of the message first published at `seq`."""
        cached = self._aggregates.get(seq)
        if cached is not None:
            self._aggregates.move_to_end(seq)
            return cached
        message = await self.store.message(self.log.channel_id, seq)
        # A change numbered while we were reading is newer than what the store had.
        cached = self._aggregates.get(seq)
        if cached is not None:
            return cached
        if message is not None:
            self._keep_aggregate(seq, message)
        return message

    def trimmed(self, upto_seq: int) -> None:
        """Retention removed every event up to `upto_seq`: resumes from before it are refused
        (channel_relay.channels.replay) and cached aggregates of removed messages are dropped."""
        self.log.first_seq = max(self.log.first_seq, upto_seq + 1)
        for seq in [s for s in self._aggregates if s <= upto_seq]:
            del self._aggregates[seq]

    def _keep_aggregate(self, seq: int, message: dict[str, Any]) -> None:
        self._aggregates[seq] = message
        self._aggregates.move_to_end(seq)
        if len(self._aggregates) > _RECENT_AGGREGATES:
            self._aggregates.popitem(last=False)

    async def _known_ids(self, messages: list[dict[str, Any]]) -> dict[str, str]:
        ids = [m["id"] for m in messages if "id" in m]
        if not ids:
            return {}
        known = {mid: self._recent_ids[mid] for mid in ids if mid in self._recent_ids}
        missing = [mid for mid in ids if mid not in known]
        if missing:
            found = await self.store.idempotent_seqs(self.log.channel_id, missing)
            for mid, seq in found.items():
                known[mid] = format_serial(self.log.epoch, seq)
            # A publish with the same id may have been numbered while we were reading.
            known.update((mid, self._recent_ids[mid]) for mid in missing if mid in self._recent_ids)
        return known

    def _remember(self, message_id: str, serial: str) -> None:
        self._recent_ids[message_id] = serial
        if len(self._recent_ids) > _RECENT_IDS:
            self._recent_ids.popitem(last=False)

    # Delivering

    def _protocol_message(
        self, messages: list[dict[str, Any]], channel_serial: str | None, publisher: str | None
    ) -> dict[str, Any]:
        first = messages[0]
        message: dict[str, Any] = {
            "action": Action.MESSAGE,
            "channel": self.name,
            "timestamp": first["timestamp"],
            "messages": messages,
        }
        if channel_serial is not None:
            message["channelSerial"] = channel_serial
        if publisher is not None:
            message["connectionId"] = publisher
            message["id"] = first["id"].rpartition(":")[0]
        return message

    def _fan_out_when_due(self, fan_out: Callable[[], None]) -> None:
        """Fan out now, or later when a test delays this channel's deliveries (see faults.py)."""
        if self.faults is None or not self.faults.defer(self.app_id, self.name, fan_out):
            fan_out()

    def _fan_out(self, messages: list[dict[str, Any]], publisher: str | None) -> None:
        if not self.subscribers:
            return
        serial = next((m["serial"] for m in reversed(messages) if "serial" in m), None)
        outgoing = Outgoing(self._protocol_message(messages, serial, publisher), publisher)
        if self.metrics is not None:
            self.metrics.deliveries.inc(len(self.subscribers))
        for subscriber in list(self.subscribers):
            if subscriber.connection_id == publisher and not subscriber.echo:
                continue
            self._deliver(subscriber, outgoing)

    def _fan_out_change(
        self,
        target: int,
        seq: int,
        operation: dict[str, Any],
        aggregate: dict[str, Any],
        publisher: str | None,
    ) -> None:
        if not self.subscribers:
            return
        serial = format_serial(self.log.epoch, seq)
        change = (target, seq)
        if self.metrics is not None:
            self.metrics.deliveries.inc(len(self.subscribers))
        op_out = Outgoing(self._protocol_message([operation], serial, publisher), publisher, change)
        whole_out = op_out
        if operation is not aggregate:
            whole_out = Outgoing(
                self._protocol_message([aggregate], serial, publisher), publisher, change
            )
        for subscriber, subscription in list(self.subscribers.items()):
            if subscriber.connection_id == publisher and not subscriber.echo:
                continue
            if target > subscription.start_seq or target in subscription.adopted:
                self._deliver(subscriber, op_out)
            else:
                subscription.adopted.add(target)
                self._deliver(subscriber, whole_out)

    @staticmethod
    def _deliver(subscriber: Subscriber, outgoing: Outgoing) -> None:
        try:
            subscriber.deliver(outgoing)
        except Exception:
            log.exception("delivery to %s failed", subscriber.connection_id)


def _is_ephemeral(message: dict[str, Any]) -> bool:
    extras = message.get("extras")
    return isinstance(extras, dict) and extras.get("ephemeral") is True
