"""All live channels of the relay, loaded from the store on first use."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from channel_relay.channels.channel import Channel
from channel_relay.channels.rules import ChannelRules
from channel_relay.store.base import Store

if TYPE_CHECKING:
    from channel_relay.faults import Faults
    from channel_relay.metrics import Metrics

__all__ = ["ChannelRegistry"]


class ChannelRegistry:
    def __init__(
        self,
        store: Store,
        rules: Callable[[str, str], ChannelRules],
        faults: Faults | None = None,
    ) -> None:
        self.store = store
        self.rules = rules
        # Given to every channel: fault injection, on sandbox relays only.
        self.faults = faults
        # Given to every channel, and read by connections: counters (channel_relay.metrics).
        self.metrics: Metrics | None = None
        # Given to every channel: told of each committed publish (channel_relay.push).
        self.on_published: Callable[[Channel, list[dict[str, Any]]], None] | None = None
        self._channels: dict[tuple[str, str], Channel] = {}
        self._loading: dict[tuple[str, str], asyncio.Future[Channel]] = {}

    def __len__(self) -> int:
        return len(self._channels)

    def forget(self, app_id: str) -> list[Channel]:
        """Drop the app's live channels (its data is being removed); returns them."""
        dropped = [key for key in self._channels if key[0] == app_id]
        return [self._channels.pop(key) for key in dropped]

    def peek(self, app_id: str, name: str) -> Channel | None:
        """The channel if it is loaded: the hot path of a publish, with nothing to await."""
        return self._channels.get((app_id, name))

    def loaded(self, app_id: str, name: str) -> Channel | None:
        """The channel if it is live in memory, without loading it."""
        return self._channels.get((app_id, name))

    async def get(self, app_id: str, name: str) -> Channel:
        """The channel, loading (or creating) its log once however many ask at the same time."""
        key = (app_id, name)
        channel = self._channels.get(key)
        if channel is not None:
            return channel
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Channel] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            log_ = await self.store.channel(app_id, name)
            channel = Channel(app_id, name, log_, self.store, self.rules(app_id, name))
            channel.faults = self.faults
            channel.metrics = self.metrics
            channel.on_published = self.on_published
            self._channels[key] = channel
            future.set_result(channel)
            return channel
        except BaseException as exc:
            future.set_exception(exc)
            # Nobody else may be waiting; retrieve it so asyncio does not warn.
            future.exception()
            raise
        finally:
            del self._loading[key]
