"""The channels live in memory: loaded from the store when named, unloaded when idle.

A channel's log is created in the store by its first write (publish, presence, change), never
by a read or an attach, so a key that may only read cannot make rows for arbitrary names. A
channel nobody uses (channel_relay.channels.channel.Channel.idle) is unloaded by a sweep once it
has not been looked up for a whole sweep interval, so memory follows what is in use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from channel_relay.channels.channel import Channel
from channel_relay.channels.rules import ChannelRules
from channel_relay.protocol.serials import NO_LOG_EPOCH
from channel_relay.store.base import UNSTORED, ChannelLog, HistoryQuery, Store
from channel_relay.tasks import cancel_and_wait

if TYPE_CHECKING:
    from channel_relay.channels.annotations import Annotations
    from channel_relay.faults import Faults
    from channel_relay.metrics import Metrics

__all__ = ["ChannelRegistry"]

_Key = tuple[str, str]
_T = TypeVar("_T")


class ChannelRegistry:
    def __init__(
        self,
        store: Store,
        rules: Callable[[str, str], ChannelRules],
        faults: Faults | None = None,
        *,
        sweep_interval: float = 10.0,
        max_loaded: int = 10_000,
    ) -> None:
        self.store = store
        self.rules = rules
        # Given to every channel: fault injection, on sandbox relays only.
        self.faults = faults
        # Given to every channel, and read by connections: counters (channel_relay.metrics).
        self.metrics: Metrics | None = None
        # This node among those sharing the store: presence members it loads that another node
        # serves are that node's to keep (or, if it dies, to be announced as leaving).
        self.node_id = ""
        # Given to every channel: told of each committed publish (channel_relay.push).
        self.on_published: Callable[[Channel, list[dict[str, Any]]], None] | None = None
        self.on_presence: Callable[[Channel, list[dict[str, Any]], int], None] | None = None
        # Message annotations, read by connections and the REST API.
        self.annotations: Annotations | None = None
        # Idle channels are unloaded every `sweep_interval` seconds, and sooner (at most once
        # a second) while more than `max_loaded` are loaded.
        self.sweep_interval = sweep_interval
        self.max_loaded = max_loaded
        self._channels: dict[_Key, Channel] = {}
        # Loaded channels by the id of their log (entries of unloaded ones are dropped on use).
        self._by_id: dict[int, Channel] = {}
        self._loading: dict[_Key, asyncio.Task[Channel | None]] = {}
        self._storing: dict[_Key, asyncio.Task[None]] = {}
        self._generation = 1
        self._last_sweep = 0.0
        self._sweeper: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._channels)

    def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_periodically())

    async def stop(self) -> None:
        await cancel_and_wait(self._sweeper)
        self._sweeper = None

    def forget(self, app_id: str) -> list[Channel]:
        """Drop the app's live channels (its data is being removed); returns them."""
        dropped = [key for key in self._channels if key[0] == app_id]
        return [self._channels.pop(key) for key in dropped]

    def loaded_by_id(self, channel_id: int) -> Channel | None:
        """The live channel whose log has this id, if it is loaded (another node's commit on
        it is delivered here; on a channel not loaded there is nobody to deliver to)."""
        channel = self._by_id.get(channel_id)
        if channel is None:
            return None
        if self._channels.get((channel.app_id, channel.name)) is not channel:
            del self._by_id[channel_id]  # unloaded since
            return None
        return channel

    async def adopt(self, channel: Channel) -> None:
        """Another node created the log of `channel`, loaded here without one: take it on."""
        key = (channel.app_id, channel.name)
        await self._store(key, channel)

    def loaded_channels(self) -> list[Channel]:
        """Every channel live in memory, with a log in the store or not yet."""
        return list(self._channels.values())

    def peek(self, app_id: str, name: str) -> Channel | None:
        """The channel if it is loaded with a stored log: the hot path of a publish, with
        nothing to await."""
        channel = self._channels.get((app_id, name))
        if channel is None or not channel.stored:
            return None
        channel.touched = self._generation
        return channel

    def loaded(self, app_id: str, name: str) -> Channel | None:
        """The channel if it is live in memory, without loading it."""
        return self._channels.get((app_id, name))

    async def get(self, app_id: str, name: str) -> Channel:
        """The channel with its log in the store, created now if this is its first write:
        for publishing, entering presence and changing messages, once authorised."""
        key = (app_id, name)
        channel = await self._load(key) or self._unstored(key)
        if not channel.stored:
            await self._store(key, channel)
        return channel

    async def attach(self, app_id: str, name: str) -> Channel:
        """The channel, loaded to be attached to: a channel without a log gets one in memory
        only (its serials start at 0), until something is written to it."""
        key = (app_id, name)
        return await self._load(key) or self._unstored(key)

    async def find(self, app_id: str, name: str) -> Channel | None:
        """The channel if it is loaded or has a log in the store; None for a name nothing was
        ever written to. For reads, which must create nothing."""
        return await self._load((app_id, name))

    def readmit(self, channel: Channel) -> bool:
        """After an await, make sure `channel` is still the live one for its name: put it back
        if a sweep unloaded it meanwhile (nothing else loaded it since, so it is current);
        False when another object now stands for the name (look it up again)."""
        key = (channel.app_id, channel.name)
        live = self._channels.setdefault(key, channel)
        live.touched = self._generation
        self._index(live)
        return live is channel

    async def _load(self, key: _Key) -> Channel | None:
        channel = self._channels.get(key)
        if channel is None:
            found = await _once(self._loading, key, lambda: self._find(key))
            # A channel made in memory meanwhile (an attach) is the live one.
            channel = self._channels.get(key, found)
            if channel is None:
                return None
        channel.touched = self._generation
        return channel

    async def _find(self, key: _Key) -> Channel | None:
        log_ = await self.store.find_channel(*key)
        if log_ is None:
            return None
        # The latest presence seq first: an event committed before the members are read is
        # among them, and applying it again when catching up changes nothing.
        latest = await self.store.presence_history(HistoryQuery(log_.channel_id, limit=1))
        members = await self.store.presence_members(log_.channel_id)
        loaded = self._channels.get(key)
        if loaded is not None:
            return loaded
        channel = self._admit(key, log_)
        channel.presence.restore(members, self.node_id)
        channel.presence.seen_seq = latest[0].seq if latest else 0
        return channel

    def _unstored(self, key: _Key) -> Channel:
        channel = self._channels.get(key)
        if channel is None:
            log_ = ChannelLog(channel_id=UNSTORED, epoch=NO_LOG_EPOCH, last_seq=0)
            channel = self._admit(key, log_)
        channel.touched = self._generation
        return channel

    async def _store(self, key: _Key, channel: Channel) -> None:
        async def create() -> None:
            if not channel.stored:
                channel.stored_as(await self.store.channel(*key))
                self._index(channel)

        await _once(self._storing, key, create)

    def _admit(self, key: _Key, log_: ChannelLog) -> Channel:
        channel = self._channels.get(key)
        if channel is not None:
            return channel
        channel = Channel(key[0], key[1], log_, self.store, self.rules(*key))
        channel.faults = self.faults
        channel.metrics = self.metrics
        channel.on_published = self.on_published
        channel.on_presence = self.on_presence
        self._channels[key] = channel
        self._index(channel)
        if len(self._channels) > self.max_loaded:
            loop = asyncio.get_running_loop()
            if loop.time() - self._last_sweep >= 1.0:
                self.sweep()
        return channel

    def sweep(self) -> int:
        """Unload the idle channels not looked up since the previous sweep; how many."""
        self._last_sweep = asyncio.get_running_loop().time()
        stale = self._generation
        self._generation += 1
        idle = [
            key
            for key, channel in self._channels.items()
            if channel.touched < stale and channel.idle()
        ]
        for key in idle:
            self._by_id.pop(self._channels.pop(key).log.channel_id, None)
        return len(idle)

    def _index(self, channel: Channel) -> None:
        if channel.stored:
            self._by_id[channel.log.channel_id] = channel

    async def _sweep_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            self.sweep()


async def _once(
    pending: dict[_Key, asyncio.Task[_T]], key: _Key, work: Callable[[], Coroutine[Any, Any, _T]]
) -> _T:
    """`work()` for `key`, done once however many ask while it runs: they all get its result.

    The work runs in its own task, so a caller cancelled while waiting (its socket dropped
    during an ATTACH) neither stops it nor hands its cancellation to the other callers: that
    silently ended their ATTACHes without a reply."""
    task = pending.get(key)
    if task is None:
        task = asyncio.get_running_loop().create_task(work())
        pending[key] = task
        task.add_done_callback(lambda _: pending.pop(key))
    return await asyncio.shield(task)
