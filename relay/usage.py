"""Live stats: what the relay counts itself, per app and minute, in Ably's stats entry names.

Counted as things happen (publishes, deliveries, storage, connections, active channels) into
in-memory minutes, and added to a table beside the log every few seconds and at shutdown
(channel_relay.store.live_stats: on a cluster, every node adds to the same rows), so
`GET /stats` serves them merged with the sandbox's fixtures. Entries named `*.peak` keep the
largest value seen; all others are sums.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from channel_relay.protocol.validation import message_size
from channel_relay.store.live_stats import LiveStatsTable, merge_entries
from channel_relay.store.outage import OutageLog
from channel_relay.tasks import cancel_and_wait

__all__ = ["LiveStats", "merged"]

log = logging.getLogger(__name__)

_Key = tuple[str, int]

# The entry names a publish adds to, spelled once: this runs on every commit.
_KINDS = ("all", "messages")


def _count_and_data(prefix: str) -> tuple[tuple[str, str], ...]:
    return tuple((f"{prefix}.{k}.count", f"{prefix}.{k}.data") for k in _KINDS)


_INBOUND = _count_and_data("messages.inbound.all")
_OUTBOUND = _count_and_data("messages.outbound.all")
_ALL = _count_and_data("messages.all")
_PERSISTED = tuple(f"messages.persisted.{k}.count" for k in _KINDS)


def _minute(now_ms: int) -> int:
    return now_ms - now_ms % 60_000


class LiveStats:
    """Counts kept in memory and added to `table` every `flush_every` seconds."""

    def __init__(self, table: LiveStatsTable, flush_every: float) -> None:
        self._db = table
        self._flush_every = flush_every
        self._pending: dict[_Key, dict[str, float]] = {}
        # Per app and minute: messages in, bytes in, messages out, bytes out, messages stored.
        self._tallies: dict[_Key, list[int]] = {}
        self._channels: dict[_Key, set[str]] = {}
        self._open: dict[str, int] = {}
        self._flusher: asyncio.Task[None] | None = None
        # Held while counts are on their way to the table: a read meanwhile would find them
        # neither there nor pending.
        self._flushing = asyncio.Lock()
        self._outage = OutageLog(log, "flushing live stats")

    async def open(self) -> None:
        await self._db.open()
        self._flusher = asyncio.get_running_loop().create_task(self._flush_periodically())

    async def close(self) -> None:
        await cancel_and_wait(self._flusher)
        self._flusher = None
        await self.flush()
        await self._db.close()

    # Counting

    def _add(self, app_id: str, entries: Mapping[str, float]) -> None:
        key = (app_id, _minute(int(time.time() * 1000)))
        merge_entries(self._pending.setdefault(key, {}), entries)

    def published(
        self, app_id: str, channel: str, messages: list[dict[str, Any]], fan_out: int
    ) -> None:
        """Messages a channel committed (and delivered to `fan_out` subscribers)."""
        # Every commit calls this for each publish: loops, not generator expressions' frames.
        count = len(messages)
        data = 0
        kept = count
        for message in messages:
            data += message_size(message)
            extras = message.get("extras")
            if extras and extras.get("ephemeral"):
                kept -= 1
        key = (app_id, _minute(int(time.time() * 1000)))
        # It adds to five numbers, spelled out as entries when read.
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = [0, 0, 0, 0, 0]
        tally[0] += count
        tally[1] += data
        tally[2] += count * fan_out
        tally[3] += data * fan_out
        tally[4] += kept
        # Channels active in the minute: the first publish on each counts it as opened.
        active = self._channels.get(key)
        if active is None:
            active = self._channels[key] = set()
        if channel not in active:
            active.add(channel)
            self._add(app_id, {"channels.opened": 1, "channels.peak": len(active)})

    def _fold_tallies(self) -> None:
        """Publish tallies into the pending entries, before those are stored or read."""
        for key, (count, data, out_count, out_data, kept) in self._tallies.items():
            entries: dict[str, float] = {}
            for names, n, size in (
                (_INBOUND, count, data),
                (_OUTBOUND, out_count, out_data),
                (_ALL, count + out_count, data + out_data),
            ):
                for count_name, data_name in names:
                    entries[count_name] = n
                    entries[data_name] = size
            for name in _PERSISTED:
                entries[name] = kept
            merge_entries(self._pending.setdefault(key, {}), entries)
        self._tallies = {}

    def presence(self, app_id: str, events: list[dict[str, Any]], fan_out: int) -> None:
        """Presence events a channel committed (and delivered to `fan_out` subscribers): they
        count under `presence` and `all`, as Ably counts them."""
        count = len(events)
        data = sum(message_size(e) for e in events)
        entries: dict[str, float] = {}
        for direction, n, size in (
            ("inbound.all", count, data),
            ("outbound.all", count * fan_out, data * fan_out),
            ("all", count * (1 + fan_out), data * (1 + fan_out)),
        ):
            for kind in ("all", "presence"):
                entries[f"messages.{direction}.{kind}.count"] = n
                entries[f"messages.{direction}.{kind}.data"] = size
        for kind in ("all", "presence"):
            entries[f"messages.persisted.{kind}.count"] = count
        self._add(app_id, entries)

    def connection(self, app_id: str, change: int) -> None:
        """A socket of `app_id` opened (+1) or closed (-1)."""
        open_now = max(self._open.get(app_id, 0) + change, 0)
        self._open[app_id] = open_now
        entries = {"connections.all.peak": float(open_now)}
        if change > 0:
            entries["connections.all.opened"] = 1.0
        self._add(app_id, entries)

    # Storing and reading

    async def flush(self) -> None:
        """Add the minutes counted so far to the table (one transaction)."""
        async with self._flushing:
            self._fold_tallies()
            pending, self._pending = self._pending, {}
            now = _minute(int(time.time() * 1000))
            self._channels = {k: v for k, v in self._channels.items() if k[1] >= now}
            if not pending:
                return
            try:
                await self._db.add(pending)
            except BaseException:
                for key, entries in pending.items():
                    merge_entries(self._pending.setdefault(key, {}), entries)
                raise

    async def minutes(
        self, app_id: str, start: int, end: int
    ) -> list[tuple[int, dict[str, float]]]:
        """The app's counted minutes starting within [start, end], oldest first."""
        async with self._flushing:
            out = await self._db.read(app_id, start, end)
            self._fold_tallies()
            for (app, minute), entries in self._pending.items():
                if app == app_id and start <= minute <= end:
                    merge_entries(out.setdefault(minute, {}), entries)
        return sorted(out.items())

    async def delete_app(self, app_id: str) -> None:
        async with self._flushing:
            self._fold_tallies()
            self._pending = {k: v for k, v in self._pending.items() if k[0] != app_id}
            await self._db.delete_app(app_id)

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._flush_every)
            try:
                await self.flush()
            except Exception as exc:
                # The minutes stay pending for the next flush.
                self._outage.failed(exc)
            else:
                self._outage.succeeded()


def merged(
    *sources: Iterable[tuple[int, Mapping[str, float]]],
) -> list[tuple[int, dict[str, float]]]:
    """Minutes from several sources, summed per minute (peaks kept as the largest)."""
    out: dict[int, dict[str, float]] = {}
    for source in sources:
        for start, entries in source:
            merge_entries(out.setdefault(start, {}), entries)
    return sorted(out.items())
