"""How late the event loop runs: a timer due every quarter second, and how long after its due
time it ran (`relay_event_loop_lag_seconds`).

Every frame read, commit completed and delivery written waits behind whatever else the loop has
to do; when the relay's core is saturated that wait is most of a publish's latency (a loop
iteration grows to tens of milliseconds), while CPU use alone reads 100% at any load past that
point. The lag is what an operator compares against the ACK latency to tell the two apart."""

from __future__ import annotations

import asyncio

from channel_relay.metrics import LoopHistogram
from channel_relay.tasks import cancel_and_wait

__all__ = ["LoopLagProbe"]

INTERVAL = 0.25


class LoopLagProbe:
    def __init__(self, histogram: LoopHistogram) -> None:
        self.histogram = histogram
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        observe = self.histogram.observe
        while True:
            due = loop.time() + INTERVAL
            await asyncio.sleep(INTERVAL)
            observe(max(loop.time() - due, 0.0))
