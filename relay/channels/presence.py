"""A channel's presence: who is there (members keyed by clientId:connectionId), the events that
change it, stored as presence history and delivered to presence subscribers after commit."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from channel_relay.channels.outgoing import Outgoing, Subscriber
from channel_relay.protocol.actions import Action, PresenceAction
from channel_relay.protocol.errors import AblyError
from channel_relay.store.base import HistoryQuery, PresenceEvents
from channel_relay.store.errors import store_error

if TYPE_CHECKING:
    from channel_relay.channels.channel import Channel

__all__ = ["Presence", "PresenceDone", "member_key"]

log = logging.getLogger(__name__)

# Presence events read per query while catching up with other nodes.
_CATCH_UP_PAGE = 500
# How many ids of its own committed events a channel's presence remembers.
_COMMITTED_HERE = 1_000

PresenceDone = Callable[[list[str | None] | None, AblyError | None], None]
_COMPARED = ("data", "encoding", "extras")


def member_key(event: dict[str, Any]) -> str:
    return f"{event['clientId']}:{event['connectionId']}"


class Presence:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.members: dict[str, dict[str, Any]] = {}
        # The member set as it will be once every event handed to the store is applied: what
        # decides whether a new event changes anything (and so is stored at all), and whose
        # members a departing connection has (an enter still being stored included).
        self._projected: dict[str, dict[str, Any]] = {}
        self.subscribers: dict[Subscriber, None] = {}
        # Members loaded from the store that another node serves (see `restore`).
        self._foreign: set[str] = set()
        # The presence seq up to which other nodes' events are applied here (`catch_up`).
        self.seen_seq = 0
        self._catching_up = asyncio.Lock()
        # Ids of the events this node committed lately: catching up skips them (applied here
        # already; applying an old one again could resurrect a member that left since).
        self._committed_here: dict[str, None] = {}

    def subscribe(self, subscriber: Subscriber) -> None:
        self.subscribers[subscriber] = None

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.pop(subscriber, None)

    def restore(self, members: list[tuple[str, dict[str, Any]]], node_id: str) -> None:
        """The members the store holds, loaded with the channel (from before a restart, or
        entered through another node). Those another node serves count as absent for an enter:
        re-entering one here is stored, which makes this node its owner."""
        for owner, member in members:
            key = member_key(member)
            self.members[key] = member
            self._projected[key] = member
            if owner != node_id:
                self._foreign.add(key)

    async def catch_up(self, last_seq: int) -> None:
        """Apply and deliver the presence events other nodes committed on this channel, up to
        presence seq `last_seq` (their commit's notification named it). Events of this node
        are among them: they were applied when they committed, and are skipped."""
        async with self._catching_up:
            while self.seen_seq < last_seq:
                rows = await self.channel.store.presence_history(
                    HistoryQuery(
                        channel_id=self.channel.log.channel_id,
                        limit=_CATCH_UP_PAGE,
                        forwards=True,
                        min_seq=self.seen_seq + 1,
                        max_seq=last_seq,
                    )
                )
                if not rows:
                    return
                self.seen_seq = rows[-1].seq
                changed = []
                for row in rows:
                    event = row.message
                    if event.get("id") in self._committed_here:
                        continue
                    _apply(self._projected, event)
                    if _apply(self.members, event):
                        changed.append(event)
                        key = member_key(event)
                        if event["action"] == PresenceAction.LEAVE:
                            self._foreign.discard(key)
                        else:
                            self._foreign.add(key)
                if changed:
                    self._fan_out(changed, None)

    def leave_members(self, members: list[dict[str, Any]]) -> None:
        """Members whose node died: announced as leaving, by this node."""
        now = int(time.time() * 1000)
        leaves = []
        for member in members:
            key = member_key(member)
            current = self._projected.get(key)
            self._foreign.discard(key)
            if current is None or current.get("timestamp") != member.get("timestamp"):
                continue  # re-entered (or left) since: not the orphan any more
            leaves.append(_leave(member, now))
        for leave in leaves:
            _apply(self._projected, leave)
        if leaves:
            self._commit(leaves, _ignore, publisher=None)

    def _adopt(self, event: dict[str, Any]) -> bool:
        """Whether `event` concerns a member another node served (it becomes this node's)."""
        key = member_key(event)
        if key not in self._foreign:
            return False
        self._foreign.discard(key)
        return True

    def pending(self) -> bool:
        """Whether members are entered or being stored (the projected set is not empty)."""
        return bool(self._projected)

    def publish(
        self,
        events: list[dict[str, Any]],
        done: PresenceDone,
        *,
        connection_id: str,
        id_base: str,
    ) -> None:
        """Store enter/update/leave events (validated, with clientIds) from one connection, then
        apply them to the member set and deliver them. Events that change nothing (an SDK
        re-entering a member exactly as it is, a leave of someone absent) are acknowledged
        but neither stored nor delivered, so presence history is what subscribers saw."""
        now = int(time.time() * 1000)
        for index, event in enumerate(events):
            event.setdefault("id", f"{id_base}:{index}")
            event["connectionId"] = connection_id
            event["timestamp"] = now
        changing = []
        for event in events:
            changed = _apply(self._projected, event)
            # Stored even when unchanged if another node served the member: it is ours now.
            if self._adopt(event) or changed:
                changing.append(event)
        if not changing:
            done([None] * len(events), None)
            return
        self._commit(
            changing,
            lambda _, error: done(None if error else [None] * len(events), error),
            publisher=connection_id,
        )

    def leave_connection(self, connection_id: str) -> None:
        """The connection is gone: its members leave. The leaves are synthesized, with ids
        that do not start with the connectionId, as SDKs expect of them."""
        now = int(time.time() * 1000)
        leaves = [
            _leave(member, now)
            for member in self._projected.values()
            if member["connectionId"] == connection_id
        ]
        for leave in leaves:
            _apply(self._projected, leave)
        if leaves:
            self._commit(leaves, _ignore, publisher=None)

    def _commit(
        self, events: list[dict[str, Any]], done: PresenceDone, publisher: str | None
    ) -> None:
        def committed(_: None, error: BaseException | None) -> None:
            if error is not None:
                # Not stored: forget it (events committing meanwhile are in `members` too).
                self._projected = dict(self.members)
                done(None, store_error("Presence", error))
                return
            for event in events:
                self._committed_here[event["id"]] = None
            while len(self._committed_here) > _COMMITTED_HERE:
                del self._committed_here[next(iter(self._committed_here))]
            changed = [event for event in events if _apply(self.members, event)]
            if changed:
                self._fan_out(changed, publisher)
                if self.channel.on_presence is not None:
                    self.channel.on_presence(self.channel, changed, len(self.subscribers))
            done([None] * len(events), None)

        self.channel.submit(PresenceEvents(self.channel.log.channel_id, events, committed))

    def _fan_out(self, events: list[dict[str, Any]], publisher: str | None) -> None:
        message: dict[str, Any] = {
            "action": Action.PRESENCE,
            "channel": self.channel.name,
            "timestamp": events[0]["timestamp"],
            "presence": events,
        }
        if publisher is not None:
            message["connectionId"] = publisher
            message["id"] = events[0]["id"].rpartition(":")[0]
        outgoing = Outgoing(message, publisher)
        for subscriber in list(self.subscribers):
            try:
                subscriber.deliver(outgoing)
            except Exception:
                log.exception("presence delivery to %s failed", subscriber.connection_id)

    def sync(self, page_size: int) -> list[dict[str, Any]]:
        """The SYNC ProtocolMessages that hand the whole member set to an attaching client:
        pages of PRESENT members, the last with an empty cursor ("syncId:")."""
        members = [{**m, "action": PresenceAction.PRESENT} for m in self.members.values()]
        sync_id = secrets.token_hex(6)
        pages = [members[i : i + page_size] for i in range(0, len(members), page_size)] or [[]]
        return [
            {
                "action": Action.SYNC,
                "channel": self.channel.name,
                "channelSerial": f"{sync_id}:{'' if i == len(pages) - 1 else i + 1}",
                "presence": page,
            }
            for i, page in enumerate(pages)
        ]


def _apply(members: dict[str, dict[str, Any]], event: dict[str, Any]) -> bool:
    """Update a member set; False when the event changes nothing (a leave of someone absent,
    or an SDK re-entering a member exactly as it already is)."""
    key = member_key(event)
    current = members.get(key)
    if event["action"] == PresenceAction.LEAVE:
        return members.pop(key, None) is not None
    if current is not None and all(current.get(k) == event.get(k) for k in _COMPARED):
        return False
    members[key] = event
    return True


def _leave(member: dict[str, Any], now: int) -> dict[str, Any]:
    """A leave synthesized by the relay, with an id that does not start with the connectionId,
    as SDKs expect of them."""
    leave = {k: member[k] for k in ("clientId", "connectionId", *_COMPARED) if k in member}
    leave["action"] = PresenceAction.LEAVE
    leave["id"] = f"{secrets.token_urlsafe(9)}:0:0"
    leave["timestamp"] = now
    return leave


def _ignore(serials: list[str | None] | None, error: AblyError | None) -> None:
    if error is not None:
        log.error("synthesized presence leaves could not be stored: %s", error.message)
