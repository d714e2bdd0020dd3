"""Where an attach starts reading a channel's log: after a channelSerial, or a rewind."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from relay.channels.channel import Channel
from relay.protocol.errors import AblyError
from relay.protocol.serials import parse_serial
from relay.store.base import HistoryQuery

__all__ = ["ReplayFrom", "read_range", "resume_from", "rewind_from"]

MAX_REWIND = 100
_DURATION = re.compile(r"^(\d+)(ms|s|m|h)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
_PAGE = 100


@dataclass(frozen=True, slots=True)
class ReplayFrom:
    """Replay messages after `after_seq`, or (when set) those since `since_ms`."""

    after_seq: int = 0
    since_ms: int | None = None


def resume_from(channel: Channel, channel_serial: Any) -> ReplayFrom | AblyError:
    """Continue after `channel_serial`, or the error that says continuity from it is lost.

    Lost means: not a serial of ours (80012), or from a log of this channel the relay no longer
    holds, or newer than anything delivered (80006). The SDK then treats the attach as fresh.
    """
    parsed = parse_serial(channel_serial) if isinstance(channel_serial, str) else None
    if parsed is None:
        return AblyError(80012, 400, "Channel continuity not guaranteed: invalid channelSerial")
    epoch, seq = parsed
    if epoch != channel.log.epoch or seq > channel.delivered_seq:
        return AblyError(
            80006, 400, "Channel continuity not guaranteed: channelSerial is not in the log"
        )
    return ReplayFrom(after_seq=seq)


def rewind_from(channel: Channel, rewind: str) -> ReplayFrom:
    """Ably's `rewind` attach param: a count of messages ("10", at most 100) or a duration
    ("30s", "2m", "1h"); 40003 for anything else."""
    if rewind.isdigit():
        count = min(int(rewind), MAX_REWIND)
        return ReplayFrom(after_seq=max(channel.delivered_seq - count, 0))
    match = _DURATION.match(rewind)
    if match is None:
        raise AblyError.invalid_param(f"Invalid rewind value {rewind!r}")
    span = int(match.group(1)) * _UNIT_MS[match.group(2)]
    return ReplayFrom(since_ms=int(time.time() * 1000) - span)


async def read_range(
    channel: Channel, start: ReplayFrom, until_seq: int
) -> AsyncIterator[list[dict[str, Any]]]:
    """Pages of the messages from `start` up to `until_seq` inclusive, oldest first."""
    after = start.after_seq
    since = start.since_ms
    while after < until_seq:
        rows = await channel.store.history(
            HistoryQuery(
                channel_id=channel.log.channel_id,
                limit=_PAGE,
                forwards=True,
                min_seq=after + 1,
                max_seq=until_seq,
                start=since,
            )
        )
        if not rows:
            return
        yield [row.message for row in rows]
        after = rows[-1].seq
