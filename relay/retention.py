"""Retention: removing old messages per namespace rules, in the background, a little at a time.

A namespace's rules may keep messages for `max_age_ms` and/or keep only the newest
`max_messages` of each channel (channel_relay.channels.rules). Every `interval` seconds a pass walks
the channels of the store one at a time; for one whose rules retain, it asks the store for the
cutoff (the newest message to remove) and removes up to it in deletes of `batch` messages. Each
delete is one write through the store's writer, queued among publishes like any other, and the
pass yields to the event loop between deletes: a publish waits at most for one small delete,
never for a whole channel's cleanup.

What is removed is gone for history, rewind and replay alike, and the channel remembers how far
(`ChannelLog.first_seq`): an attach that resumes from an older channelSerial is answered
without RESUMED, with 80006, so the SDK knows continuity was not kept. The channel's last_seq
is untouched: serials keep growing after a channel is emptied.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from channel_relay.channels.registry import ChannelRegistry
from channel_relay.channels.rules import ChannelRules
from channel_relay.store.base import Store
from channel_relay.store.outage import OutageLog
from channel_relay.tasks import cancel_and_wait

if TYPE_CHECKING:
    from channel_relay.metrics import Metrics

__all__ = ["Retention"]

log = logging.getLogger(__name__)


class Retention:
    def __init__(
        self,
        store: Store,
        rules: Callable[[str, str], ChannelRules],
        channels: ChannelRegistry,
        *,
        interval: float,
        batch: int,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.rules = rules
        self.channels = channels
        self.interval = interval
        self.batch = batch
        self.metrics = metrics
        self._task: asyncio.Task[None] | None = None
        self._outage = OutageLog(log, "a retention pass")

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="relay-retention")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._outage.failed(exc)
            else:
                self._outage.succeeded()

    async def run_once(self, now_ms: int | None = None) -> int:
        """One pass over every channel; the number of messages removed."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        removed = 0
        for channel_id, app_id, name in await self.store.channel_list():
            rules = self.rules(app_id, name)
            if not rules.retains:
                continue
            before = None if rules.max_age_ms is None else now - rules.max_age_ms
            cutoff = await self.store.retention_cutoff(channel_id, before, rules.max_messages)
            if cutoff:
                removed += await self._trim(channel_id, app_id, name, cutoff)
        return removed

    async def _trim(self, channel_id: int, app_id: str, name: str, cutoff: int) -> int:
        removed = 0
        while True:
            count, end = await self.store.trim(channel_id, cutoff, self.batch)
            removed += count
            channel = self.channels.loaded(app_id, name)
            if channel is not None and channel.log.channel_id == channel_id:
                channel.trimmed(end)
            if self.metrics is not None and count:
                self.metrics.retention_deleted.inc(count)
            if end >= cutoff or count == 0:
                break
            # Let publishes and deliveries run between deletes.
            await asyncio.sleep(0)
        if removed:
            log.info(
                "retention removed %d messages of %s up to seq %d",
                removed,
                name,
                cutoff,
                extra={"channel": name, "app_id": app_id},
            )
        return removed
