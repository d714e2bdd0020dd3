"""Replaying a channel's log to a subscriber: after a channelSerial (resume) or a rewind.

What is replayed is the log as a subscriber that saw everything up to the starting point would
need it: messages first published after it come once, as their latest aggregate; changes to
messages it already had come as the operations themselves.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any

from channel_relay.channels.channel import Channel
from channel_relay.protocol.errors import AblyError
from channel_relay.protocol.serials import format_serial, parse_serial
from channel_relay.store.base import HistoryQuery

__all__ = ["Replay", "resume_from", "rewind_from"]

MAX_REWIND = 100
_DURATION = re.compile(r"^([0-9]+)(ms|s|m|h)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}
_PAGE = 100


def resume_from(channel: Channel, channel_serial: Any) -> int | AblyError:
    """The seq to continue after, or the error that says continuity from it is lost.

    Lost means: not a serial of ours (80012), or from a log of this channel the relay no longer
    holds, or older than what retention kept, or newer than anything delivered, or among events
    a restore from backup lost (80006). The SDK then treats the attach as fresh.
    """
    parsed = parse_serial(channel_serial) if isinstance(channel_serial, str) else None
    if parsed is None:
        return AblyError(80012, 400, "Channel continuity not guaranteed: invalid channelSerial")
    epoch, seq = parsed
    if seq == 0 and channel.log.first_seq == 1:
        # Attached when nothing had been written (the log may not even have existed): every
        # event in the log is new to it, whichever log that is.
        return 0
    if epoch != channel.log.epoch or seq > channel.delivered_seq:
        return AblyError(
            80006, 400, "Channel continuity not guaranteed: channelSerial is not in the log"
        )
    if any(after < seq <= upto for after, upto in channel.log.lost):
        # The client saw events a restore from backup lost: the log no longer has them.
        return AblyError(
            80006, 400, "Channel continuity not guaranteed: the log was restored from a backup"
        )
    if seq < channel.log.first_seq - 1:
        # Retention removed events after this point: replaying what is left would skip them.
        return AblyError(
            80006, 400, "Channel continuity not guaranteed: channelSerial is older than retention"
        )
    return seq


async def rewind_from(channel: Channel, rewind: str) -> int:
    """The seq to replay after for Ably's `rewind` attach param: a count of messages ("10", at
    most 100), a duration ("30s", "2m", "1h"), or a message serial (every message after it,
    then live: how AI Transport reloads a session from the last serial it holds); 40003 for
    anything else, and 80006 for a serial whose events are no longer in the log.

    Every answer is bounded by what was delivered when the rewind was asked: a publish
    delivered while the store is read comes after the answer, so the attach replays it
    (answering the newer position would skip it: it went out before the subscription).
    """
    if parse_serial(rewind) is not None:
        return _after_serial(channel, rewind)
    delivered = channel.delivered_seq
    if rewind.isascii() and rewind.isdigit():
        count = min(int(rewind), MAX_REWIND)
        if count == 0:
            return delivered
        query = HistoryQuery(channel_id=channel.log.channel_id, limit=count, max_seq=delivered)
        rows = await channel.store.history(query)
    else:
        match = _DURATION.match(rewind)
        if match is None:
            raise AblyError.invalid_param(f"Invalid rewind value {rewind!r}")
        # A duration longer than the epoch means everything kept (and must not overflow the
        # store's 64-bit timestamps).
        since = max(0, int(time.time() * 1000) - int(match.group(1)) * _UNIT_MS[match.group(2)])
        query = HistoryQuery(
            channel_id=channel.log.channel_id,
            limit=1,
            forwards=True,
            max_seq=delivered,
            start=since,
        )
        rows = await channel.store.history(query)
    if not rows:
        return delivered
    return min(row.seq for row in rows) - 1


def _after_serial(channel: Channel, serial: str) -> int:
    # A serial from before retention or from another log is refused, as a resume from it is:
    # replaying what is left would silently skip messages.
    point = resume_from(channel, serial)
    if isinstance(point, AblyError):
        raise point
    return point


class Replay:
    """The events after `after_seq` up to `until_seq`, and which versions of each message they
    carried, so that live changes already folded into a replayed aggregate are not sent again."""

    def __init__(self, channel: Channel, after_seq: int, until_seq: int) -> None:
        self.channel = channel
        self.after_seq = after_seq
        self.until_seq = until_seq
        self._versions: dict[int, int] = {}

    async def pages(self) -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
        """Pages of messages, oldest first, each with the channelSerial of its last event."""
        after = self.after_seq
        epoch = self.channel.log.epoch
        while after < self.until_seq:
            events = await self.channel.store.events(
                self.channel.log.channel_id, self.after_seq, after, self.until_seq, _PAGE
            )
            if not events:
                return
            for event in events:
                version = event.message.get("version")
                parsed = parse_serial(version["serial"]) if version else None
                if parsed is not None and parsed[0] == epoch:
                    known = self._versions.get(event.target_seq, -1)
                    self._versions[event.target_seq] = max(known, parsed[1])
            after = events[-1].seq
            yield [event.message for event in events], format_serial(epoch, after)

    def covers(self, change: tuple[int, int] | None) -> bool:
        """Whether a live change (message seq, version seq) was already part of the replay."""
        if change is None:
            return False
        target, seq = change
        return self._versions.get(target, -1) >= seq
