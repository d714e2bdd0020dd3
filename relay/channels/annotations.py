"""Message annotations (ProtocolMessage action 21): publishing, and the summaries Ably rolls
them up into.

An annotation is stored (channel_relay.store.annotations), then delivered to the connections
attached with the ANNOTATION_SUBSCRIBE mode, and the annotated message's new summary goes to
every subscriber as a message.summary (the message's serial, `annotations.summary`).
Annotations need the channel rule that enables updates and deletes (93002 without it), as on
Ably.

On a cluster, what another node appended is heard through its commit's notification
(channel_relay.channels.cluster) and delivered here from the table, with the summary that
append made. A summary goes out only when it is newer than the last one this node delivered for
the message (it folds rows up to a higher id), so one overtaken on its way is never delivered
after the one that overtook it.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any

from channel_relay.channels.channel import Channel
from channel_relay.channels.outgoing import Outgoing, Subscriber
from channel_relay.channels.summaries import IDENTIFIED_AGGREGATIONS, aggregation, summarize
from channel_relay.protocol.actions import Action, Flag, MessageAction
from channel_relay.protocol.errors import AblyError
from channel_relay.protocol.serials import format_serial, parse_serial
from channel_relay.store.annotations import Annotated, AnnotationStore, upto
from channel_relay.store.errors import store_error

__all__ = ["Annotations"]

log = logging.getLogger(__name__)

# Messages whose last summary delivered is remembered (the oldest forgotten first).
_SUMMARIES_KEPT = 10_000


class Annotations:
    def __init__(self, store: AnnotationStore) -> None:
        self.store = store
        # (app, channel, message serial) -> the row id the last summary delivered went up to.
        self._summarized: OrderedDict[tuple[str, str, str], int] = OrderedDict()

    async def publish(
        self,
        channel: Channel,
        annotations: list[dict[str, Any]],
        *,
        id_base: str,
        connection_id: str | None = None,
    ) -> list[str]:
        """Store validated `annotations` (clientIds already stamped) and deliver them and the
        new summaries; their serials. 93002 where annotations are not enabled, 40400 for a
        messageSerial that names no message of the channel, 40003 for an anonymous client
        publishing a type that counts clients."""
        if not channel.rules.mutable_messages:
            raise AblyError(
                93002, 400, "Annotations are not enabled on this channel (the mutable rule)"
            )
        # Annotation serials follow the channel's position here, or the message annotated when
        # this node has not delivered it yet (another node committed it a moment ago).
        position = channel.delivered_seq
        for annotation in annotations:
            position = max(position, await self._check_target(channel, annotation["messageSerial"]))
            if "clientId" not in annotation and aggregation(annotation["type"]) in (
                IDENTIFIED_AGGREGATIONS
            ):
                raise AblyError.invalid_param(
                    f"Annotations of type {annotation['type']} need an identified client"
                )
        now = int(time.time() * 1000)
        for index, annotation in enumerate(annotations):
            annotation.setdefault("id", f"{id_base}:{index}")
            annotation["timestamp"] = now
            if connection_id is not None:
                annotation["connectionId"] = connection_id
        try:
            stored, by_message = await self.store.append(
                channel.app_id,
                channel.name,
                format_serial(channel.log.epoch, position),
                annotations,
            )
        except Exception as exc:
            raise store_error("Annotation", exc) from exc
        await self._after_messages(channel, list(by_message))
        await self._deliver(channel, stored, by_message, connection_id, now)
        return [annotation["serial"] for annotation in stored]

    async def committed_elsewhere(self, channel: Channel, ids: list[int]) -> None:
        """Another node appended rows `ids` on `channel`: deliver them and their summaries."""
        added, by_message = await self.store.committed(channel.app_id, channel.name, ids)
        if added:
            await self._after_messages(channel, list(by_message))
            await self._deliver(channel, added, by_message, None, added[-1]["timestamp"])

    async def _after_messages(self, channel: Channel, message_serials: list[str]) -> None:
        """Hold annotations and summaries until the messages they annotate are delivered here:
        another node may have committed one a moment ago, not yet read from the log."""
        seqs = [
            parsed[1]
            for parsed in map(parse_serial, message_serials)
            if parsed is not None and parsed[0] == channel.log.epoch
        ]
        if seqs and max(seqs) > channel.delivered_seq:
            await channel.sequencer.reached(max(seqs))

    async def _deliver(
        self,
        channel: Channel,
        added: list[dict[str, Any]],
        by_message: Annotated,
        publisher: str | None,
        timestamp: int,
    ) -> None:
        # Names first: from the check of a summary's order to its delivery nothing may await.
        names = {serial: await _name_of(channel, serial) for serial in by_message}
        self._deliver_annotations(channel, added, publisher)
        for serial, all_of_message in by_message.items():
            if self._newer(channel, serial, upto(all_of_message)):
                summary = summarize(all_of_message)
                self._deliver_summary(channel, serial, names[serial], summary, timestamp)

    def _newer(self, channel: Channel, message_serial: str, row_id: int) -> bool:
        """Whether a summary up to `row_id` is newer than the last delivered (and now is)."""
        key = (channel.app_id, channel.name, message_serial)
        if self._summarized.get(key, 0) >= row_id:
            return False
        self._summarized[key] = row_id
        self._summarized.move_to_end(key)
        if len(self._summarized) > _SUMMARIES_KEPT:
            self._summarized.popitem(last=False)
        return True

    async def with_summaries(
        self, app_id: str, channel: str, messages: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """`messages` (as history or getMessage returns them), each annotated one with its
        current `annotations.summary`, as Ably's history carries it."""
        serials = [m["serial"] for m in messages if isinstance(m.get("serial"), str)]
        found = await self.store.of_messages(app_id, channel, serials)
        if not found:
            return messages
        return [
            {**m, "annotations": {"summary": summarize(found[m["serial"]])}}
            if m.get("serial") in found
            else m
            for m in messages
        ]

    async def _check_target(self, channel: Channel, message_serial: str) -> int:
        """The seq of the message annotated, found in the store (whichever node committed it)."""
        parsed = parse_serial(message_serial)
        if parsed is None or parsed[0] != channel.log.epoch:
            raise AblyError.not_found(f"No message with serial {message_serial!r}")
        if await channel.message(parsed[1]) is None:
            raise AblyError.not_found(f"No message with serial {message_serial!r}")
        return parsed[1]

    def _deliver_annotations(
        self, channel: Channel, annotations: list[dict[str, Any]], publisher: str | None
    ) -> None:
        message = {
            "action": Action.ANNOTATION,
            "channel": channel.name,
            "annotations": annotations,
        }
        outgoing = Outgoing(message, publisher)
        for subscriber, modes in list(channel.attached.items()):
            if not modes & Flag.ANNOTATION_SUBSCRIBE:
                continue
            if subscriber.connection_id == publisher and not subscriber.echo:
                continue
            _deliver(subscriber, outgoing)

    def _deliver_summary(
        self,
        channel: Channel,
        message_serial: str,
        name: str | None,
        summary: dict[str, Any],
        timestamp: int,
    ) -> None:
        event: dict[str, Any] = {
            "action": MessageAction.SUMMARY,
            "serial": message_serial,
            "timestamp": timestamp,
            "annotations": {"summary": summary},
        }
        # The annotated message's name, as on Ably: subscribers filtering by name see it.
        if name is not None:
            event["name"] = name
        message = {"action": Action.MESSAGE, "channel": channel.name, "messages": [event]}
        # The summary is the channel's, not the publisher's message: echo=false does not hide it.
        outgoing = Outgoing(message, None)
        channel.deltas.reset()
        for subscriber in list(channel.subscribers):
            _deliver(subscriber, outgoing)


async def _name_of(channel: Channel, message_serial: str) -> str | None:
    parsed = parse_serial(message_serial)
    if parsed is None or parsed[0] != channel.log.epoch:
        return None
    message = await channel.message(parsed[1])
    name = None if message is None else message.get("name")
    return name if isinstance(name, str) else None


def _deliver(subscriber: Subscriber, outgoing: Outgoing) -> None:
    try:
        subscriber.deliver(outgoing)
    except Exception:
        log.exception("delivery to %s failed", subscriber.connection_id)
