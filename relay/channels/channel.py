"""A channel: numbers what is published, commits it, then delivers it to subscribers in order."""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from channel_relay.auth.permissions import authorize_change
from channel_relay.channels.deltas import Deltas
from channel_relay.channels.outgoing import Outgoing, Subscriber
from channel_relay.channels.presence import Presence
from channel_relay.channels.rules import ChannelRules
from channel_relay.channels.sequencer import Sequencer
from channel_relay.protocol.actions import Action, MessageAction
from channel_relay.protocol.errors import AblyError
from channel_relay.protocol.mutations import apply_mutation
from channel_relay.protocol.serials import format_serial, parse_serial
from channel_relay.protocol.validation import message_size
from channel_relay.store.base import (
    UNSTORED,
    ChannelLog,
    LogEvent,
    Mutate,
    MutateResult,
    Publish,
    PublishResult,
    Store,
    WriteOp,
)
from channel_relay.store.errors import store_error

if TYPE_CHECKING:
    from channel_relay.auth.identity import Identity
    from channel_relay.faults import Faults
    from channel_relay.metrics import Metrics

__all__ = ["Channel", "PublishDone", "SubscriberView"]

log = logging.getLogger(__name__)

PublishDone = Callable[[list[str | None] | None, AblyError | None], None]
"""Called once a publish is durable, with its serials (one per message, None for an ephemeral
one), or with the error."""

# Enum members every publish uses, looked up once (on Python 3.11 reading one off its class
# costs ~0.4 us).
_CREATE = MessageAction.CREATE
_MESSAGE = Action.MESSAGE

# Aggregates of recently changed messages, as commits left them: what a change another node
# committed is applied to, to deliver its aggregate without reading the store.
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

    The store numbers what is published when it commits it, in the order publishes arrive,
    and calls back in that order; memory (the delivered seq, cached aggregates) changes only
    in those callbacks, after a commit succeeded, so delivery order is serial order and a
    failed commit leaves no trace.
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
        self._aggregates: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self.presence = Presence(self)
        self.sequencer = Sequencer(self, self._deliver_logged, self._deliver_published)
        # Every attached connection and its granted modes (occupancy).
        self.attached: dict[Subscriber, int] = {}
        # Injected faults (sandbox relays and the pytest plugin only): see channel_relay.faults.
        self.faults: Faults | None = None
        # Counters of publishes and deliveries (channel_relay.metrics), when the relay keeps them.
        self.metrics: Metrics | None = None
        # Told of every committed publish (push notifications for extras.push).
        self.on_published: Callable[[Channel, list[dict[str, Any]]], None] | None = None
        # Told of every committed presence change, and how many it went to (live stats).
        self.on_presence: Callable[[Channel, list[dict[str, Any]], int], None] | None = None
        # Subscribers that asked for vcdiff deltas (params.delta), and their bases.
        self.deltas = Deltas()
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
        """The channel's log has been created (it had only a name in memory until now). With
        several nodes another may have written to it already: that is caught up from the log,
        so a subscriber attached meanwhile misses none of it."""
        self.log = log_
        self.sequencer.learned(log_.last_seq)

    def idle(self) -> bool:
        """Nothing would be lost by unloading the channel: nobody is attached or subscribed,
        it has no presence, and nothing is being published."""
        presence = self.presence
        return not (
            self.busy
            or not self.sequencer.idle
            or self.subscribers
            or self.attached
            or presence.members
            or presence.pending()
            or presence.subscribers
        )

    def submit(self, op: WriteOp) -> None:
        """Hand a write to the store; the channel counts as busy until it completes."""
        self.busy += 1
        op.done = _Completion(self, op.done)
        self.store.submit(op)

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
        self.deltas.drop(subscriber)

    def _now(self) -> int:
        # Timestamps never go backwards within a channel, so time bounds follow seq order.
        now = int(time.time() * 1000)
        if now < self._last_timestamp:
            return self._last_timestamp
        self._last_timestamp = now
        return now

    # Publishing

    def publish(
        self,
        messages: list[dict[str, Any]],
        done: PublishDone,
        *,
        connection_id: str | None = None,
        id_base: str | None = None,
        resendable: bool = False,
    ) -> None:
        """Store and (after commit) deliver `messages`, then call `done`.

        `messages` are validated wire dicts; the channel stamps timestamp, action and, where
        missing, an id "<id_base>:<index>" and the publisher's connectionId; the store numbers
        them when it commits. Messages whose client-supplied id was stored before are not
        stored again: `done` gets their original serials (idempotent publishing). Messages
        with `extras.ephemeral` are delivered but never stored, and have no serial.
        `resendable`: the publisher may send the same publish again under the same `id_base`
        (a realtime connection resumed on another node, or after a restart, resends what it
        saw no ACK for), so the generated ids are kept for idempotency too.

        Not a coroutine: nothing here waits (the commit is awaited through `done`), and a
        realtime publish would otherwise make and await one more coroutine per message.
        """
        if self.faults is not None:
            self.faults.check_publish(self.app_id, self.name)
        if id_base is None:
            id_base = secrets.token_urlsafe(12)
        now = self._now()
        stored: list[dict[str, Any]] = []
        client_ids: list[str | None] = []
        ephemeral: list[dict[str, Any]] = []
        for index, message in enumerate(messages):
            given_id = message.get("id")
            if given_id is None:
                message["id"] = f"{id_base}:{index}"
            if connection_id is not None:
                message["connectionId"] = connection_id
            message["timestamp"] = now
            message["action"] = _CREATE
            if "extras" in message and _is_ephemeral(message):
                ephemeral.append(message)
            else:
                stored.append(message)
                client_ids.append(message["id"] if resendable else given_id)

        # Even a publish with nothing to store goes through the store's queue, so that its
        # completion keeps its place among the publisher's others (ACKs stay in order). The
        # pending publish is its own completion (it marks the channel one write less busy, as
        # `submit` would): one object per publish waits for the commit.
        pending = _PendingPublish(self, messages, done, connection_id)
        log_ = self.log
        self.busy += 1
        self.store.submit(
            Publish(log_.channel_id, log_.epoch, stored, client_ids, pending.committed, ephemeral)
        )

    def mutate(
        self,
        op: dict[str, Any],
        done: PublishDone,
        *,
        identity: Identity,
        channel_name: str,
        max_size: int,
        connection_id: str | None = None,
    ) -> None:
        """Apply an update, delete or append (`op`, validated) to the message at `op["serial"]`
        for `identity`, who names the channel `channel_name`.

        The store applies it inside its commit, to the aggregate it holds, once
        `authorize_change` allows `identity` to change that message. `done` gets the new
        version serial, or the error: 93002 when the channel's rules do not enable mutable
        messages; 40400 for a serial that names no message of this channel; 40009 when the
        result would exceed `max_size`.
        """
        if not self.rules.mutable_messages:
            raise AblyError(
                93002, 400, "Message updates, deletes and appends are not enabled on this channel"
            )
        parsed = parse_serial(op["serial"])
        if parsed is None or parsed[0] != self.log.epoch:
            raise AblyError.not_found(f"No message with serial {op['serial']!r}")
        version: dict[str, Any] = dict(op.get("version") or {})
        client_id = identity.client_id
        if client_id is not None and client_id != "*":
            version["clientId"] = client_id
        version["timestamp"] = self._now()
        change = _PendingChange(
            self, op, version, identity, channel_name, max_size, done, connection_id
        )
        self.submit(
            Mutate(self.log.channel_id, self.log.epoch, parsed[1], change.apply, change.committed)
        )

    async def message(self, seq: int) -> dict[str, Any] | None:
        """The latest aggregate of the message first published at `seq`, read from the store:
        another node may have changed it a moment ago, before this one heard of it."""
        return await self.store.message(self.log.channel_id, seq)

    def trimmed(self, upto_seq: int) -> None:
        """Retention removed every event up to `upto_seq`: resumes from before it are refused
        (channel_relay.channels.replay) and cached aggregates of removed messages are dropped."""
        self.log.first_seq = max(self.log.first_seq, upto_seq + 1)
        for seq in [s for s in self._aggregates if s <= upto_seq]:
            del self._aggregates[seq]

    def forget_aggregates(self) -> None:
        """Another node changed messages of the channel: cached aggregates may be stale."""
        self._aggregates.clear()

    def _keep_aggregate(self, seq: int, message: dict[str, Any]) -> None:
        self._aggregates[seq] = message
        self._aggregates.move_to_end(seq)
        if len(self._aggregates) > _RECENT_AGGREGATES:
            self._aggregates.popitem(last=False)

    # Delivering

    def _protocol_message(
        self, messages: list[dict[str, Any]], channel_serial: str | None, publisher: str | None
    ) -> dict[str, Any]:
        first = messages[0]
        message: dict[str, Any] = {
            "action": _MESSAGE,
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

    def deliver_ephemeral(self, messages: list[dict[str, Any]]) -> None:
        """Ephemeral messages another node published here (never stored, so never in the log:
        delivered as they arrive, outside serial order)."""
        publisher = messages[0].get("connectionId")
        self._fan_out_when_due(lambda: self._fan_out(messages, publisher))

    async def _deliver_logged(self, event: LogEvent) -> None:
        """Deliver an event another node committed, read from the log: a message as first
        published, or a change with the aggregate it leaves."""
        message = event.message
        if not event.is_version:
            self._deliver_published(message)
            return
        target = event.target_seq
        aggregate = message
        if message.get("action") == MessageAction.APPEND:
            before = self._aggregates.get(target) or await self.store.message(
                self.log.channel_id, target
            )
            if before is not None and _version_seq(before) < event.seq:
                aggregate, _ = apply_mutation(before, message, message["version"])
            elif before is not None:
                aggregate = before  # already holds this append (read after later changes)
        self._keep_aggregate(target, aggregate)
        self._fan_out_when_due(
            lambda: self._fan_out_change(target, event.seq, message, aggregate, None)
        )

    def _deliver_published(self, message: dict[str, Any]) -> None:
        """Deliver a message another node published, as first published."""
        publisher = message.get("connectionId")
        self._fan_out_when_due(lambda: self._fan_out([message], publisher))

    def _fan_out_when_due(self, fan_out: Callable[[], None]) -> None:
        """Fan out now, or later when a test delays this channel's deliveries (see faults.py)."""
        if self.faults is None or not self.faults.defer(self.app_id, self.name, fan_out):
            fan_out()

    def _fan_out(self, messages: list[dict[str, Any]], publisher: str | None) -> None:
        subscribers = self.subscribers
        if not subscribers:
            return
        if self.metrics is not None:
            self.metrics.deliveries.count += len(subscribers)
        deltas = self.deltas
        if deltas.wanted:
            self._fan_out_deltas(messages, publisher)
            return
        # This loop runs once per delivery. The frame is made for the first subscriber that
        # gets it: a publisher alone on its channel without echo gets none.
        outgoing = None
        for subscriber in list(subscribers):
            if subscriber.connection_id == publisher and not subscriber.echo:
                # (deltas.skipped is for subscribers that want deltas: none does.)
                continue
            if outgoing is None:
                outgoing = Outgoing(
                    self._protocol_message(messages, _last_serial(messages), publisher), publisher
                )
            try:
                subscriber.deliver(outgoing)
            except Exception:
                log.exception("delivery to %s failed", subscriber.connection_id)
        deltas.advance(messages)

    def _fan_out_deltas(self, messages: list[dict[str, Any]], publisher: str | None) -> None:
        """The fan-out when some subscriber wants vcdiff deltas: each gets the whole message or
        the delta its chooser picks."""
        serial = _last_serial(messages)
        outgoing = Outgoing(self._protocol_message(messages, serial, publisher), publisher)
        deltas = self.deltas
        choose = deltas.chooser(
            messages,
            outgoing,
            lambda encoded: Outgoing(self._protocol_message(encoded, serial, publisher), publisher),
        )
        for subscriber in list(self.subscribers):
            if subscriber.connection_id == publisher and not subscriber.echo:
                deltas.skipped(subscriber)
                continue
            try:
                subscriber.deliver(choose(subscriber))
            except Exception:
                log.exception("delivery to %s failed", subscriber.connection_id)
        deltas.advance(messages)

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
        self.deltas.reset()
        serial = format_serial(self.log.epoch, seq)
        change = (target, seq)
        if self.metrics is not None:
            self.metrics.deliveries.count += len(self.subscribers)
        op_out = Outgoing(self._protocol_message([operation], serial, publisher), publisher, change)
        # The whole aggregate is for a subscriber that does not hold the message yet: made for
        # the first one (with an append, a stream's subscribers all hold it but a late joiner).
        whole_out = op_out if operation is aggregate else None
        # This loop runs once per delivery of every append: the delivery is made inline.
        for subscriber, subscription in list(self.subscribers.items()):
            if subscriber.connection_id == publisher and not subscriber.echo:
                continue
            if target > subscription.start_seq or target in subscription.adopted:
                outgoing = op_out
            else:
                subscription.adopted.add(target)
                if whole_out is None:
                    whole_out = Outgoing(
                        self._protocol_message([aggregate], serial, publisher), publisher, change
                    )
                outgoing = whole_out
            try:
                subscriber.deliver(outgoing)
            except Exception:
                log.exception("delivery to %s failed", subscriber.connection_id)


class _Completion:
    """A write's completion that first marks its channel one write less busy (a callable
    object: one per pending write, where a closure would be four)."""

    __slots__ = ("channel", "done")

    def __init__(self, channel: Channel, done: Callable[[Any, BaseException | None], None]) -> None:
        self.channel = channel
        self.done = done

    def __call__(self, result: Any, error: BaseException | None) -> None:
        self.channel.busy -= 1
        self.done(result, error)


class _PendingPublish:
    """A publish waiting for its commit, then for its place in serial order: the store's
    completion and the delivery are its bound methods (one object, like _PendingChange)."""

    __slots__ = ("channel", "connection_id", "delivered", "done", "first", "messages", "seqs")

    def __init__(
        self,
        channel: Channel,
        messages: list[dict[str, Any]],
        done: PublishDone,
        connection_id: str | None,
    ) -> None:
        self.channel = channel
        self.messages = messages
        self.done = done
        self.connection_id = connection_id
        # Once committed: what subscribers get, each one's seq (None: ephemeral), and the
        # first seq among them (None: all ephemeral).
        self.delivered: list[dict[str, Any]] = []
        self.seqs: list[int | None] = []
        self.first: int | None = None

    def committed(self, result: PublishResult | None, error: BaseException | None) -> None:
        channel = self.channel
        channel.busy -= 1
        if error is not None:
            self.done(None, store_error("Message", error))
            return
        epoch = channel.log.epoch
        seqs, fresh = (result.seqs, result.fresh) if result is not None else ((), ())
        stored = 0
        serials: list[str | None] = []
        delivered = self.delivered
        delivered_seqs = self.seqs
        first = last = None
        for message in self.messages:
            if "extras" in message and _is_ephemeral(message):
                serials.append(None)
                delivered.append(message)
                delivered_seqs.append(None)
                continue
            seq = seqs[stored]
            serial = format_serial(epoch, seq)
            serials.append(serial)
            if fresh[stored]:
                message["serial"] = serial
                delivered.append(message)
                delivered_seqs.append(seq)
                if first is None:
                    first = seq
                last = seq
            stored += 1
        if delivered:
            if channel.metrics is not None:
                channel.metrics.publishes.count += len(delivered)
            if channel.on_published is not None:
                channel.on_published(channel, delivered)
            self.first = first
            if first is None:
                self._deliver(channel.delivered_seq)
            else:
                assert last is not None
                channel.sequencer.committed(first, last, self._deliver)
        self.done(serials, None)

    def _deliver(self, after: int) -> None:
        """Deliver in its place in serial order: what is at or below `after` went out already
        (read from the log)."""
        delivered = self.delivered
        if self.first is not None and self.first <= after:
            delivered = self.delivered = [
                m for seq, m in zip(self.seqs, delivered, strict=True) if seq is None or seq > after
            ]
        if delivered:
            self.channel._fan_out_when_due(self._fan_out)

    def _fan_out(self) -> None:
        self.channel._fan_out(self.delivered, self.connection_id)


class _PendingChange:
    """An update, delete or append waiting for its commit. One object with two bound methods
    (what the store calls), not nested closures and their cells: a relay that falls behind
    holds thousands of these, and the cyclic collector walks each object they are made of."""

    __slots__ = (
        "channel",
        "channel_name",
        "connection_id",
        "done",
        "identity",
        "max_size",
        "op",
        "result",
        "version",
    )

    def __init__(
        self,
        channel: Channel,
        op: dict[str, Any],
        version: dict[str, Any],
        identity: Identity,
        channel_name: str,
        max_size: int,
        done: PublishDone,
        connection_id: str | None,
    ) -> None:
        self.channel = channel
        self.op = op
        self.version = version
        self.identity = identity
        self.channel_name = channel_name
        self.max_size = max_size
        self.done = done
        self.connection_id = connection_id
        self.result: MutateResult | None = None

    def apply(
        self, current: dict[str, Any], version_serial: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        op = self.op
        authorize_change(self.identity, self.channel_name, op["action"], current)
        aggregate, operation = apply_mutation(
            current, op, {**self.version, "serial": version_serial}
        )
        if message_size(aggregate) > self.max_size:
            raise AblyError.too_large(
                f"Message would exceed the maximum size of {self.max_size} bytes"
            )
        return aggregate, operation

    def committed(self, result: MutateResult | None, error: BaseException | None) -> None:
        if error is not None:
            self.done(None, store_error("Message", error))
            return
        assert result is not None
        self.result = result
        channel = self.channel
        channel._keep_aggregate(result.target_seq, result.aggregate)
        channel.sequencer.committed(result.seq, result.seq, self._deliver)
        self.done([format_serial(channel.log.epoch, result.seq)], None)

    def _deliver(self, _after: int) -> None:
        self.channel._fan_out_when_due(self._fan_out)

    def _fan_out(self) -> None:
        result = self.result
        assert result is not None
        self.channel._fan_out_change(
            result.target_seq, result.seq, result.operation, result.aggregate, self.connection_id
        )


def _version_seq(message: dict[str, Any]) -> int:
    """The seq of the latest change folded into an aggregate (0: never changed)."""
    version = message.get("version")
    parsed = parse_serial(version["serial"]) if version else None
    return parsed[1] if parsed is not None else 0


def _last_serial(messages: list[dict[str, Any]]) -> str | None:
    """The serial of the last stored message among `messages` (ephemeral ones have none)."""
    for message in reversed(messages):
        if "serial" in message:
            return message["serial"]
    return None


def _is_ephemeral(message: dict[str, Any]) -> bool:
    extras = message.get("extras")
    return isinstance(extras, dict) and extras.get("ephemeral") is True
