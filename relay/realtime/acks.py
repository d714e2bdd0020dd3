"""The ACK/NACK replies of one connection, sent in msgSerial order and remembered for resends.

Publishes complete when the store says they are durable, and a refused one (a NACK) can be known
at once; either way the SDK matches replies to its queue from the head, so replies must leave in
the order the publishes arrived. Replies are also kept for a while: after a resume the SDK
resends everything it has not seen acknowledged, with the same msgSerial, and those must be
answered from here instead of being published twice.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from channel_relay.protocol.actions import Action
from channel_relay.protocol.errors import AblyError

__all__ = ["AckQueue"]

_REMEMBERED = 1024


class AckQueue:
    def __init__(self, send: Callable[[dict[str, Any]], None]) -> None:
        self.send = send
        self._waiting: deque[list[Any]] = deque()
        self._pending: set[int] = set()
        self._results: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._flush_due = False

    def seen(self, msg_serial: int) -> bool:
        """Whether this msgSerial was received before. A finished one is answered again (its
        earlier reply may have gone to a dropped socket); a pending one is answered when done."""
        if msg_serial in self._pending:
            return True
        reply = self._results.get(msg_serial)
        if reply is None:
            return False
        # Resends come in msgSerial order, and the SDK pairs replies with its queue from the
        # head: answer this one before any still-unfinished publish of the previous socket with
        # a higher msgSerial, not behind it.
        slot = [msg_serial, reply]
        for index, waiting in enumerate(self._waiting):
            if waiting[0] > msg_serial:
                self._waiting.insert(index, slot)
                break
        else:
            self._waiting.append(slot)
        self._flush_soon()
        return True

    def expect(self, msg_serial: int) -> Callable[[list[str] | None, AblyError | None], None]:
        """Reserve this publish's place in the reply order; call the result with its outcome."""
        slot: list[Any] = [msg_serial, None]
        self._waiting.append(slot)
        self._pending.add(msg_serial)

        def settle(serials: list[str] | None, error: AblyError | None) -> None:
            if slot[1] is not None:
                # Settled already: a failure after the publish was handed on answers once.
                return
            if error is not None:
                slot[1] = {
                    "action": Action.NACK,
                    "msgSerial": msg_serial,
                    "count": 1,
                    "error": error.to_dict(),
                }
            else:
                slot[1] = {
                    "action": Action.ACK,
                    "msgSerial": msg_serial,
                    "count": 1,
                    "res": [{"serials": serials}],
                }
            self._pending.discard(msg_serial)
            self._results[msg_serial] = slot[1]
            if len(self._results) > _REMEMBERED:
                self._results.popitem(last=False)
            self._flush_soon()

        return settle

    def _flush_soon(self) -> None:
        # One commit settles many of a connection's publishes in a row: sending once they all
        # are lets consecutive ACKs leave as one frame (one write) instead of one each.
        if not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        waiting = self._waiting
        while waiting and waiting[0][1] is not None:
            reply = waiting.popleft()[1]
            # Consecutive ACKs leave as one frame (count > 1, one res entry each): under load
            # that halves the frames a publisher has to read.
            if reply["action"] == Action.ACK:
                serial = reply["msgSerial"]
                res = list(reply["res"])
                while (
                    waiting
                    and waiting[0][1] is not None
                    and waiting[0][1]["action"] == Action.ACK
                    and waiting[0][0] == serial + len(res)
                ):
                    res.extend(waiting.popleft()[1]["res"])
                if len(res) > 1:
                    reply = {
                        "action": Action.ACK,
                        "msgSerial": serial,
                        "count": len(res),
                        "res": res,
                    }
            self.send(reply)
