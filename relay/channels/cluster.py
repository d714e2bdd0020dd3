"""What the other relay nodes commit, heard through PostgreSQL's LISTEN/NOTIFY.

Every commit of a node ends with one NOTIFY naming the node and, per channel it wrote, the seq
range it took, and carrying the ephemeral messages it published (never stored, so never in the
log) when they fit, or naming the row of the `ephemeral` table that holds them when they do not
(channel_relay.store.postgres). An append of annotations notifies the rows it added, which the
channel's annotations deliver from the table with the summary they made
(channel_relay.channels.annotations). This node listens on a connection of its own and
hands each range of another node to the channel, if it is loaded here: its sequencer delivers
them in serial order (channel_relay.channels.sequencer), as the notification carried them when
they were small and are next, else read from the log. Notifications of this node's own commits
are recognised by their first bytes and dropped unparsed. A token revocation committed by
another node is a notification of its own: this node reads the new revocations at once
(`on_revocations`), so they are in force here as soon as they are on the node that took them.

A notification can be lost only with the connection that would carry it: when the listening
connection drops, the feed reconnects and then brings every loaded channel up to the last seq and
the last presence seq the log holds, and reads the revocations committed meanwhile, so nothing
committed meanwhile is missed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from base64 import b64decode
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import asyncpg

from channel_relay.channels.channel import Channel
from channel_relay.channels.registry import ChannelRegistry
from channel_relay.store.outage import ENGINE_AWAY, OutageLog
from channel_relay.store.pg_schema import NOTIFY_CHANNEL
from channel_relay.store.postgres import PostgresStore
from channel_relay.store.rows import unpack, unpack_list
from channel_relay.tasks import cancel_and_wait

__all__ = ["ClusterFeed"]

log = logging.getLogger(__name__)
_outage = OutageLog(log, "cluster feed: listening for the other nodes' commits")

_RECONNECT_SECONDS = 0.5


class ClusterFeed:
    def __init__(self, store: PostgresStore, channels: ChannelRegistry) -> None:
        self.store = store
        self.channels = channels
        self._task: asyncio.Task[None] | None = None
        # Adoptions and presence catch-ups under way.
        self._tasks: set[asyncio.Task[None]] = set()
        # Per channel (app, name), the last delivery of ephemeral messages waiting for a parked
        # row to be read: what comes after waits behind it.
        self._parked: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._lost: asyncio.Event = asyncio.Event()
        # Set while a LISTEN is in place (start() waits for the first).
        self._listening = asyncio.Event()
        # Reads the revocations committed since it last did and enforces them (the
        # authenticator's): after each LISTEN is in place, and at each revocation elsewhere.
        self.on_revocations: Callable[[], Coroutine[Any, Any, None]] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())
        await self._listening.wait()

    @property
    def listening(self) -> bool:
        """False from the loss of the listening connection until it listens again and has
        begun catching up: meanwhile this node does not hear what the others commit
        (readiness)."""
        return self._listening.is_set()

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        # What notifications started ends with the feed (a catch-up still retrying a read
        # would go on against a closed store).
        for task in list(self._tasks):
            await cancel_and_wait(task)

    async def _run(self) -> None:
        first = True
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await self.store.connect()
                self._lost.clear()
                conn.add_termination_listener(lambda _: self._lost.set())
                await conn.add_listener(NOTIFY_CHANNEL, self._notified)
                self._revoked()
                if not first:
                    await self._resync()
                first = False
                self._listening.set()
                _outage.succeeded()
                await self._lost.wait()
                self._listening.clear()
                log.warning("cluster feed: the listening connection was lost; reconnecting")
            except (*ENGINE_AWAY, asyncpg.PostgresError) as exc:
                _outage.failed(exc)
            finally:
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(_RECONNECT_SECONDS)

    def _notified(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        if payload.startswith(f'{{"node":"{self.store.node_id}"'):
            return  # this node's own commit: delivered as it completed (and not worth parsing)
        try:
            note = json.loads(payload)
        except ValueError:
            log.warning("cluster feed: unreadable notification %r", payload[:200])
            return
        if note.get("node") == self.store.node_id:
            return
        if note.get("revocations"):
            self._revoked()
        for kind in ("ephemeral", "parked"):
            for channel_id, app_id, name, item in note.get(kind, ()):
                channel = self.channels.loaded_by_id(channel_id) or self.channels.loaded(
                    app_id, name
                )
                if channel is not None:
                    self._ephemeral(channel, unpack_list(item) if kind == "ephemeral" else item)
        annotations = self.channels.annotations
        for app_id, name, ids in note.get("annotations", ()):
            channel = self.channels.loaded(app_id, name)
            if channel is not None and annotations is not None:
                self._spawn(annotations.committed_elsewhere(channel, ids))
        # Messages a small commit carried: delivered now if they are next (their range, below,
        # then changes nothing); otherwise the range has them read from the log.
        for channel_id, first, bodies in note.get("messages", ()):
            loaded = self.channels.loaded_by_id(channel_id)
            if loaded is not None:
                loaded.sequencer.arrived(first, [unpack(b64decode(b)) for b in bodies])
        for channel_id, _first, last, app_id, name in note.get("ranges", ()):
            loaded = self.channels.loaded_by_id(channel_id)
            if loaded is not None:
                loaded.sequencer.learned(last)
                continue
            unstored = self.channels.loaded(app_id, name)
            if unstored is not None and not unstored.stored:
                # Attached to here before any node wrote to it, and first written elsewhere.
                self._spawn(self._adopt(unstored, last))
        # Presence changes: the channel reads them from the log (channel_relay.channels.presence).
        for channel_id, last, app_id, name in note.get("presence", ()):
            loaded = self.channels.loaded_by_id(channel_id)
            if loaded is not None:
                self._spawn(loaded.presence.catch_up(last))
                continue
            unstored = self.channels.loaded(app_id, name)
            if unstored is not None and not unstored.stored:
                self._spawn(self._adopt_presence(unstored, last))

    def _revoked(self) -> None:
        if self.on_revocations is not None:
            self._spawn(self.on_revocations())

    def _ephemeral(self, channel: Channel, item: list[dict[str, Any]] | int) -> None:
        """Deliver ephemeral messages (or those of a parked row) in the order their commits
        were heard: behind a parked row still being read, later ones wait their turn."""
        key = (channel.app_id, channel.name)
        ahead = self._parked.get(key)
        if ahead is None and not isinstance(item, int):
            channel.deliver_ephemeral(item)
            return
        task = self._spawn(self._ephemeral_after(ahead, channel, item))
        self._parked[key] = task
        task.add_done_callback(
            lambda done: self._parked.pop(key) if self._parked.get(key) is done else None
        )

    async def _ephemeral_after(
        self, ahead: asyncio.Task[None] | None, channel: Channel, item: list[dict[str, Any]] | int
    ) -> None:
        if ahead is not None:
            await asyncio.wait([ahead])
        messages = await self.store.parked_ephemeral(item) if isinstance(item, int) else item
        if messages is None:
            log.warning("cluster feed: ephemeral messages on %s dropped before read", channel.name)
            return
        channel.deliver_ephemeral(messages)

    async def _adopt(self, channel: Channel, last: int) -> None:
        # The log may have been read before this commit (by an adoption already under way,
        # which this one joins): what it names is caught up all the same.
        await self.channels.adopt(channel)
        channel.sequencer.learned(last)

    async def _adopt_presence(self, channel: Channel, last: int) -> None:
        await self.channels.adopt(channel)
        await channel.presence.catch_up(last)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(_logged(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _resync(self) -> None:
        """After a reconnect: whatever was committed while nobody listened, from the log, the
        presence events as well as the messages."""
        for channel in self.channels.loaded_channels():
            if channel.stored:
                channel.sequencer.learned(await self.store.last_seq(channel.log.channel_id))
            elif await self.store.find_channel(channel.app_id, channel.name) is not None:
                # First written by another node meanwhile (catches its messages up too).
                await self.channels.adopt(channel)
            else:
                continue
            last = await self.store.last_presence_seq(channel.log.channel_id)
            self._spawn(channel.presence.catch_up(last))


async def _logged(work: Awaitable[None]) -> None:
    try:
        await work
    except Exception:
        log.exception("cluster feed: applying another node's commit failed")
