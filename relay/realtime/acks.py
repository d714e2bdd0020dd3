"""The ACK/NACK replies of one connection, sent in msgSerial order and remembered for resends.

Publishes complete when the store says they are durable, and a refused one (a NACK) can be known
at once; either way the SDK matches replies to its queue from the head, so replies must leave in
the order the publishes arrived. Replies are also kept for a while: after a resume the SDK
resends everything it has not seen acknowledged, with the same msgSerial, and those must be
answered from here instead of being published twice.

This runs once per publish, so it allocates little: an outcome is the tuple of serials (an ACK)
or the AblyError (a NACK), and the reply dicts are built only as they leave. What is remembered
is those tuples of strings, which the cyclic collector stops tracking, so a thousand remembered
replies per connection do not add to every full collection.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from channel_relay.protocol.actions import Action
from channel_relay.protocol.errors import AblyError
from channel_relay.realtime.frames import at_uncork

__all__ = ["AckQueue"]

_REMEMBERED = 1024
# Publishes of one connection read and not yet answered, past which its socket is not read
# until half have been answered: a relay that falls behind stops taking work in (as a TCP server
# does) instead of queueing it without bound; what was read still completes, so the SDK, which
# keeps its own queue, gets its ACKs and carries on.
_MAX_PENDING = 256

# Looked up once: reading an enum member off its class costs ~0.4 us on Python 3.11, and this
# is once per ACK frame.
_ACK = Action.ACK

Outcome = tuple[str | None, ...] | AblyError
Settle = Callable[[list[str | None] | None, AblyError | None], None]


class _Slot:
    """One publish's place in the reply order; `settle` is the callback handed to the publish.
    `what` and `channel` name it in the log if it is refused."""

    __slots__ = ("channel", "msg_serial", "outcome", "queue", "started", "what")

    def __init__(
        self,
        queue: AckQueue,
        msg_serial: int,
        outcome: Outcome | None,
        started: float,
        what: str | None = None,
        channel: Any = None,
    ) -> None:
        self.queue = queue
        self.msg_serial = msg_serial
        self.outcome = outcome
        self.started = started
        self.what = what
        self.channel = channel

    def settle(self, serials: list[str | None] | None, error: AblyError | None) -> None:
        if self.outcome is not None:
            # Settled already: a failure after the publish was handed on answers once.
            return
        outcome: Outcome = error if error is not None else tuple(serials or ())
        self.outcome = outcome
        queue = self.queue
        if error is not None and self.what is not None and queue._refused is not None:
            queue._refused(self.what, self.channel, error)
        queue._settled(self, outcome)


class AckQueue:
    def __init__(
        self,
        send: Callable[[dict[str, Any]], None],
        observe: Callable[[float], None] | None = None,
        refused: Callable[[str, Any, AblyError], None] | None = None,
    ) -> None:
        """`send` writes a reply; `observe`, if given, is told each publish's seconds from its
        arrival to its reply (the ACK latency metric); `refused`, if given, is told of each
        NACK of a publish expected with a `what`."""
        self.send = send
        self._observe = observe
        self._refused = refused
        self._waiting: deque[_Slot] = deque()
        self._pending: set[int] = set()
        self._results: OrderedDict[int, Outcome] = OrderedDict()
        self._flush_due = False
        self._room: asyncio.Future[None] | None = None
        # Held once: asyncio.get_running_loop() per commit per connection was a getpid
        # syscall each time on this platform. A connection lives and dies on one loop.
        self._call_soon = asyncio.get_running_loop().call_soon

    def seen(self, msg_serial: int) -> bool:
        """Whether this msgSerial was received before. A finished one is answered again (its
        earlier reply may have gone to a dropped socket); a pending one is answered when done."""
        if msg_serial in self._pending:
            return True
        outcome = self._results.get(msg_serial)
        if outcome is None:
            return False
        # Resends come in msgSerial order, and the SDK pairs replies with its queue from the
        # head: answer this one before any still-unfinished publish of the previous socket with
        # a higher msgSerial, not behind it.
        slot = _Slot(self, msg_serial, outcome, 0.0)
        for index, waiting in enumerate(self._waiting):
            if waiting.msg_serial > msg_serial:
                self._waiting.insert(index, slot)
                break
        else:
            self._waiting.append(slot)
        self._flush_soon()
        return True

    def expect(self, msg_serial: int, what: str | None = None, channel: Any = None) -> Settle:
        """Reserve this publish's place in the reply order; call the result with its outcome.

        A bound method, not a closure: what waits for a commit is two objects per publish."""
        slot = _Slot(
            self, msg_serial, None, time.perf_counter() if self._observe else 0.0, what, channel
        )
        self._waiting.append(slot)
        self._pending.add(msg_serial)
        return slot.settle

    @property
    def unanswered(self) -> int:
        """Publishes received and not yet answered."""
        return len(self._pending)

    def full(self) -> bool:
        """Whether so many publishes await their reply that no more should be read yet."""
        return len(self._pending) >= _MAX_PENDING

    async def room(self) -> None:
        """Wait until at most half the bound of publishes await their reply."""
        if len(self._pending) <= _MAX_PENDING // 2:
            return
        # Shared (and shielded, so one waiter's cancellation wakes no other): the read loop of
        # a socket being replaced by a resume may still be waiting here when the new one's is.
        room = self._room
        if room is None or room.done():
            room = self._room = asyncio.get_running_loop().create_future()
        await asyncio.shield(room)

    def _settled(self, slot: _Slot, outcome: Outcome) -> None:
        if self._observe is not None:
            self._observe(time.perf_counter() - slot.started)
        pending = self._pending
        pending.discard(slot.msg_serial)
        room = self._room
        if room is not None and len(pending) <= _MAX_PENDING // 2:
            self._room = None
            if not room.done():
                room.set_result(None)
        results = self._results
        results[slot.msg_serial] = outcome
        if len(results) > _REMEMBERED:
            results.popitem(last=False)
        self._flush_soon()

    def _flush_soon(self) -> None:
        # One commit settles many of a connection's publishes in a row: sending once they all
        # are lets consecutive ACKs leave as one frame (one write) instead of one each. Inside
        # a commit's completions that is as they end (no loop callback per ACK, and the ACKs
        # leave with the commit's deliveries); otherwise on the loop's next turn.
        if not self._flush_due:
            self._flush_due = True
            if not at_uncork(self._flush):
                self._call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        waiting = self._waiting
        while waiting and waiting[0].outcome is not None:
            slot = waiting.popleft()
            outcome = slot.outcome
            if isinstance(outcome, AblyError):
                self.send(
                    {
                        "action": Action.NACK,
                        "msgSerial": slot.msg_serial,
                        "count": 1,
                        "error": outcome.to_dict(),
                    }
                )
                continue
            # Consecutive ACKs leave as one frame (count > 1, one res entry each): under load
            # that halves the frames a publisher has to read.
            serial = slot.msg_serial
            res: list[dict[str, Any]] = [{"serials": outcome}]
            while (
                waiting
                and isinstance(waiting[0].outcome, tuple)
                and waiting[0].msg_serial == serial + len(res)
            ):
                res.append({"serials": waiting.popleft().outcome})
            self.send({"action": _ACK, "msgSerial": serial, "count": len(res), "res": res})
