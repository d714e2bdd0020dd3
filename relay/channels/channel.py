"""A channel: numbers what is published, commits it, then delivers it to subscribers in order."""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from relay.channels.outgoing import Outgoing, Subscriber
from relay.protocol.actions import Action, MessageAction
from relay.protocol.errors import AblyError
from relay.protocol.serials import format_serial
from relay.store.base import AppendBatch, ChannelLog, Store, StoredMessage

__all__ = ["Channel", "PublishDone"]

log = logging.getLogger(__name__)

PublishDone = Callable[[list[str] | None, AblyError | None], None]
"""Called once a publish is durable, with its serials (one per message), or with the error."""

# Client-supplied message ids remembered in memory; older ones are found in the store.
_RECENT_IDS = 10_000


class Channel:
    """The live state of one channel of one app.

    Serials are assigned here, synchronously, in the order publishes arrive; the store commits
    in that same order and calls back in it, so delivery order is serial order for everyone.
    """

    def __init__(self, app_id: str, name: str, log_: ChannelLog, store: Store) -> None:
        self.app_id = app_id
        self.name = name
        self.log = log_
        self.store = store
        self.subscribers: dict[Subscriber, None] = {}
        # The last seq handed to subscribers: an attach starts after it, so a late joiner's
        # history (untilAttach) and its live stream meet without a gap or an overlap.
        self.delivered_seq = log_.last_seq
        self._last_timestamp = 0
        self._recent_ids: OrderedDict[str, str] = OrderedDict()

    @property
    def serial(self) -> str:
        """The serial of the last event delivered on the channel: where an attach starts."""
        return format_serial(self.log.epoch, self.delivered_seq)

    def subscribe(self, subscriber: Subscriber) -> None:
        self.subscribers[subscriber] = None

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.pop(subscriber, None)

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
        original serials (idempotent publishing).
        """
        known = await self._known_ids(messages)
        if id_base is None:
            id_base = secrets.token_urlsafe(12)
        now = max(int(time.time() * 1000), self._last_timestamp)
        self._last_timestamp = now
        serials: list[str] = []
        stored: list[StoredMessage] = []
        explicit: list[tuple[str, int]] = []
        for index, message in enumerate(messages):
            mid = message.get("id")
            if mid is not None and mid in known:
                serials.append(known[mid])
                continue
            self.log.last_seq += 1
            seq = self.log.last_seq
            serial = format_serial(self.log.epoch, seq)
            if mid is None:
                message["id"] = f"{id_base}:{index}"
            else:
                explicit.append((mid, seq))
                self._remember(mid, serial)
            if connection_id is not None:
                message["connectionId"] = connection_id
            message["timestamp"] = now
            message["serial"] = serial
            message["action"] = MessageAction.CREATE
            serials.append(serial)
            stored.append(StoredMessage(seq, message))

        def committed(error: BaseException | None) -> None:
            if error is not None:
                done(None, AblyError.internal(f"Message could not be stored: {error}"))
                return
            if stored:
                self.delivered_seq = stored[-1].seq
                self._fan_out([s.message for s in stored], connection_id)
            done(serials, None)

        # Even a publish with nothing new goes through the store's queue, so that its
        # completion keeps its place among the publisher's others (ACKs stay in order).
        self.store.submit(AppendBatch(self.log.channel_id, stored, explicit, committed))

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

    def _fan_out(self, messages: list[dict[str, Any]], publisher: str | None) -> None:
        if not self.subscribers:
            return
        first = messages[0]
        protocol_message: dict[str, Any] = {
            "action": Action.MESSAGE,
            "channel": self.name,
            "channelSerial": messages[-1]["serial"],
            "timestamp": first["timestamp"],
            "messages": messages,
        }
        if publisher is not None:
            protocol_message["connectionId"] = publisher
            protocol_message["id"] = first["id"].rpartition(":")[0]
        outgoing = Outgoing(protocol_message, publisher)
        for subscriber in list(self.subscribers):
            if subscriber.connection_id == publisher and not subscriber.echo:
                continue
            try:
                subscriber.deliver(outgoing)
            except Exception:
                log.exception("delivery to %s failed", subscriber.connection_id)
