"""Delivery in serial order when several nodes commit to one channel.

With one node, commits complete in seq order and each is delivered as it completes. With several
(PostgreSQL), this node's commit of seqs 10-12 may complete before it has heard of 7-9, committed
by another node: it is held back, the gap is read from the log, and then it goes out. What other
nodes commit is learned from their notifications (a channel and a seq range) and read from the
log, unless the notification carried the messages themselves and they are next. Each seq is
delivered once (the delivered seq only moves forward, and whatever is at or below it is
skipped), in serial order, on every node.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from channel_relay.store.base import LogEvent
from channel_relay.store.outage import OutageLog

if TYPE_CHECKING:
    from channel_relay.channels.channel import Channel

__all__ = ["Sequencer"]

log = logging.getLogger(__name__)
_outage = OutageLog(log, "catching channels up from the log")

# Events read from the log per query while catching up.
_PAGE = 200
_RETRY_SECONDS = 0.5
# The longest an annotation's delivery waits for its message to be delivered (`reached`).
_REACH_SECONDS = 5.0

Deliver = Callable[[int], None]
"""Delivers a local commit's events above the given seq (those at or below went out already)."""


class Sequencer:
    def __init__(
        self,
        channel: Channel,
        deliver_logged: Callable[[LogEvent], Awaitable[None]],
        deliver_message: Callable[[dict[str, Any]], None],
    ) -> None:
        self.channel = channel
        self._deliver_logged = deliver_logged
        # Delivers a message another node published, as first published (no change of one).
        self._deliver_message = deliver_message
        # Local commits waiting for the seqs before them: first seq -> (last seq, deliver).
        self._held: dict[int, tuple[int, Deliver]] = {}
        # The highest seq known to be committed by any node.
        self._target = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def idle(self) -> bool:
        return not self._held and self._task is None

    def committed(self, first: int, last: int, deliver: Deliver) -> None:
        """This node committed seqs first..last: deliver them now if they are next, else once
        what comes before them has been read from the log."""
        channel = self.channel
        if last <= channel.delivered_seq:
            return  # read from the log already, when another node's commit was caught up
        if first <= channel.delivered_seq + 1 and not self._held:
            after = channel.delivered_seq
            channel.delivered_seq = last
            deliver(after)
            return
        self._held[first] = (last, deliver)
        self.learned(first - 1)

    def arrived(self, first: int, messages: list[dict[str, Any]]) -> None:
        """Another node committed `messages` as seqs first.. and its notification carried them:
        delivered at once when they are next and nothing is being caught up, else read from the
        log like any other commit (they may have been delivered already, or a gap precede them)."""
        channel = self.channel
        last = first + len(messages) - 1
        if first == channel.delivered_seq + 1 and self.idle and channel.subscribers:
            channel.delivered_seq = last
            for message in messages:
                self._deliver_message(message)
            return
        self.learned(last)

    def learned(self, until: int) -> None:
        """Seqs up to `until` are committed (by another node, or before a held local commit)."""
        channel = self.channel
        if until <= channel.delivered_seq:
            return
        if not channel.subscribers and not self._held and self._task is None:
            # Nobody to deliver to: only where an attach starts moves, and cached aggregates
            # may be older than what was committed.
            channel.delivered_seq = until
            channel.forget_aggregates()
            return
        self._target = max(self._target, until)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._catch_up())

    async def reached(self, seq: int) -> bool:
        """Wait until `seq`, known to be committed, is delivered here (read from the log if
        this node has not heard of it yet); False if that cannot be done now (the log is away),
        never waiting more than a few seconds."""
        try:
            async with asyncio.timeout(_REACH_SECONDS):
                while self.channel.delivered_seq < seq:
                    self.learned(seq)
                    task = self._task
                    if task is None:
                        break  # learned() moved the delivered seq itself
                    await asyncio.wait([task])
                    if self._task is None and self.channel.delivered_seq < seq:
                        return False  # the catch-up failed: retried later, not waited for
        except TimeoutError:
            return False
        return True

    async def _catch_up(self) -> None:
        channel = self.channel
        try:
            while True:
                self._release()
                target = max([self._target, *(last for last, _ in self._held.values())])
                if channel.delivered_seq >= target:
                    _outage.succeeded()
                    return
                events = await channel.store.log_since(
                    channel.log.channel_id, channel.delivered_seq, _PAGE
                )
                progressed = False
                for event in events:
                    held_first = min(self._held, default=None)
                    if event.seq <= channel.delivered_seq:
                        continue
                    if held_first is not None and event.seq >= held_first:
                        break  # the held local commit goes out at its place, with its context
                    if event.seq > self._target:
                        break
                    await self._deliver_logged(event)
                    channel.delivered_seq = max(channel.delivered_seq, event.seq)
                    progressed = True
                if not progressed and not self._release():
                    # Nothing readable before the next known seq: retention removed it. Skip
                    # the hole rather than wait for rows that will never come.
                    firsts = [first - 1 for first in self._held]
                    channel.delivered_seq = max(channel.delivered_seq, min([self._target, *firsts]))
        except Exception as exc:
            # (The log could not be read: the database is away.) Nothing is left waiting for
            # good: the catch-up is tried again shortly.
            _outage.failed(exc)
            asyncio.get_running_loop().call_later(_RETRY_SECONDS, self._resume)
        finally:
            self._task = None

    def _resume(self) -> None:
        if self._task is None and (self._held or self._target > self.channel.delivered_seq):
            self._task = asyncio.get_running_loop().create_task(self._catch_up())

    def _release(self) -> bool:
        """Deliver held local commits that are next; whether any went out."""
        channel = self.channel
        released = False
        while self._held:
            first = min(self._held)
            if first > channel.delivered_seq + 1:
                break
            last, deliver = self._held.pop(first)
            if last > channel.delivered_seq:
                after = channel.delivered_seq
                channel.delivered_seq = last
                deliver(after)
            released = True
        return released
