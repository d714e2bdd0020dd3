"""The subscriber worker: many connections, each attached to one channel, checking every delivery.

Commands (dicts with "cmd"): `reset` (start a new measurement window), `wait` (until every
subscriber has seen `last[channel]` or the deadline; replies the window's stats), `storm` (drop
every connection at once and resume it, see `resume_storm`), `close`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..stats import LatencyHistogram, SeqTotals, SeqTracker
from .wire import FLAG_RESUMED, BareConnection, Endpoint, ProtocolError, RelayConnection
from .worker import until

__all__ = ["main"]


class Window:
    """Counters of the current measurement window, shared by all subscribers of the worker."""

    def __init__(self) -> None:
        self.hist = LatencyHistogram()
        self.count = 0
        self.first_ns = 0
        self.last_ns = 0
        self.cpu0 = time.process_time()

    def reset(self) -> None:
        self.hist.reset()
        self.count = 0
        self.first_ns = 0
        self.last_ns = 0
        self.cpu0 = time.process_time()


class Subscriber:
    __slots__ = (
        "attached_ns",
        "caught_up_ns",
        "channel",
        "conn",
        "rebase",
        "resumed_flag",
        "serial",
        "tracker",
        "window",
    )

    def __init__(self, channel: str, window: Window) -> None:
        self.channel = channel
        self.window = window
        self.tracker = SeqTracker(0)
        self.conn: RelayConnection | BareConnection | None = None
        self.serial: str | None = None
        self.attached_ns = 0
        self.caught_up_ns = 0
        self.resumed_flag = False
        self.rebase = False

    def on_delivery(self, pm: dict[str, Any]) -> None:
        # The hot loop of the load generator: the histogram and the in-order case of SeqTracker.see
        # are inlined (this runs once per delivery, up to ~200k times a second on one core).
        now = time.time_ns()
        serial = pm.get("channelSerial")
        if serial is not None:
            self.serial = serial
        window = self.window
        tracker = self.tracker
        hist = window.hist
        buckets = hist.buckets
        messages = pm["messages"]
        for msg in messages:
            data = msg["data"]
            if data.__class__ is bytes:
                data = data.decode()
            head, _, rest = data.partition(" ")
            seq = int(head)
            sent = int(rest.partition(" ")[0])
            if self.rebase:
                tracker.expected = seq
                self.rebase = False
            if seq == tracker.expected:
                tracker.expected = seq + 1
                tracker.received += 1
            else:
                tracker.see(seq)
            us = (now - sent) // 1000
            i = us // 10
            buckets[i if 0 <= i < 500_000 else (0 if i < 0 else 499_999)] += 1
            if us > hist.max_us:
                hist.max_us = us
            if self.attached_ns and not self.caught_up_ns and sent >= self.attached_ns:
                self._check_caught_up(now)
        n = len(messages)
        hist.count += n
        window.count += n
        if not window.first_ns:
            window.first_ns = now
        window.last_ns = now

    def _check_caught_up(self, now: int) -> None:
        if not self.tracker.missing:
            self.caught_up_ns = now


async def _open(
    endpoint: Endpoint, sub: Subscriber, attach: bool, role: str, resume: str | None = None
) -> None:
    if endpoint.is_relay:
        conn = await RelayConnection.open(
            endpoint, echo=True, resume=resume, on_delivery=sub.on_delivery
        )
        sub.conn = conn
        if attach:
            await conn.attach(sub.channel)
    else:
        bare = await BareConnection.open(endpoint, role if attach else "idle", sub.channel)
        bare.on_delivery = sub.on_delivery
        sub.conn = bare


async def _connect_all(
    endpoint: Endpoint, subs: list[Subscriber], attach: bool, concurrency: int, limit_s: float
) -> tuple[int, list[str]]:
    sem = asyncio.Semaphore(concurrency)
    errors: list[str] = []

    async def one(sub: Subscriber) -> None:
        async with sem:
            try:
                await _open(endpoint, sub, attach, "sub")
            except (OSError, TimeoutError, ProtocolError, ConnectionError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

    try:
        async with asyncio.timeout(limit_s):
            await asyncio.gather(*(one(s) for s in subs))
    except TimeoutError:
        errors.append(f"connect phase exceeded {limit_s:.0f} s")
    return sum(1 for s in subs if s.conn is not None), errors


def _seq_totals(subs: list[Subscriber], last: dict[str, int]) -> SeqTotals:
    totals = SeqTotals()
    for sub in subs:
        if sub.channel in last:
            totals.add(sub.tracker, last[sub.channel])
    return totals


async def _wait(subs: list[Subscriber], last: dict[str, int], limit_s: float) -> bool:
    return await until(
        lambda: all(s.tracker.expected > last.get(s.channel, -1) for s in subs), limit_s
    )


async def resume_storm(
    endpoint: Endpoint, subs: list[Subscriber], limit_s: float
) -> dict[str, Any]:
    """Drop every connection at the same instant, then resume each (resume=connectionKey) and
    re-attach from its last channelSerial; caught up = first live message after the backlog."""
    snapshot = []
    t_drop = time.time_ns()
    for sub in subs:
        assert sub.conn is not None
        snapshot.append((sub, sub.conn.connection_id, sub.conn.connection_key, sub.serial))
        sub.conn.abort()
        sub.caught_up_ns = 0
        sub.attached_ns = 0
    errors: list[str] = []
    outcome = {"same_connection": 0, "new_connection": 0, "resumed_flag": 0, "failed": 0}

    async def one(sub: Subscriber, cid: str | None, key: str | None, serial: str | None) -> None:
        try:
            if endpoint.is_relay:
                conn = await RelayConnection.open(
                    endpoint, echo=True, resume=key, on_delivery=sub.on_delivery
                )
                sub.conn = conn
                if conn.connection_id == cid and not conn.connected_error:
                    outcome["same_connection"] += 1
                else:
                    outcome["new_connection"] += 1
                    if conn.connected_error and len(errors) < 5:
                        errors.append(f"CONNECTED error {conn.connected_error}")
                attached = await conn.attach(sub.channel, channel_serial=serial)
                if (attached.get("flags") or 0) & FLAG_RESUMED:
                    outcome["resumed_flag"] += 1
            else:
                sub.rebase = True
                await _open(endpoint, sub, True, "sub")
            sub.attached_ns = time.time_ns()
        except (OSError, TimeoutError, ProtocolError, ConnectionError) as exc:
            outcome["failed"] += 1
            if len(errors) < 5:
                errors.append(f"{type(exc).__name__}: {exc}")

    try:
        async with asyncio.timeout(limit_s):
            await asyncio.gather(*(one(*snap) for snap in snapshot))
    except TimeoutError:
        errors.append(f"resume phase exceeded {limit_s:.0f} s")
    t_reconnected = time.time_ns()
    await until(lambda: all(s.caught_up_ns for s in subs), limit_s)
    catchup = LatencyHistogram()
    for sub in subs:
        if sub.caught_up_ns:
            catchup.add_us((sub.caught_up_ns - t_drop) // 1000)
    return {
        **outcome,
        "clients": len(subs),
        "caught_up": catchup.count,
        "all_caught_up_ms": catchup.max_us / 1000 if catchup.count == len(subs) else None,
        "catchup": catchup.summary(),
        "reconnect_ms": (t_reconnected - t_drop) / 1e6,
        "errors": errors,
    }


async def main(params: dict[str, Any], inbox: Any) -> None:
    endpoint = Endpoint(**params["endpoint"])
    window = Window()
    subs = [Subscriber(ch, window) for ch in params["channels"]]
    attach = params.get("attach", True)
    connected, errors = await _connect_all(
        endpoint, subs, attach, params.get("concurrency", 100), params.get("connect_timeout", 120)
    )
    subs = [s for s in subs if s.conn is not None]
    inbox.send({"ready": connected, "errors": errors[:5], "failed": len(errors)})
    while True:
        msg = await inbox.recv(limit_s=params.get("idle_timeout", 900))
        cmd = msg["cmd"]
        if cmd == "reset":
            window.reset()
            inbox.send({"ok": True})
        elif cmd == "wait":
            last: dict[str, int] = msg["last"]
            complete = await _wait(subs, last, msg.get("timeout", 10.0))
            inbox.send(
                {
                    "complete": complete,
                    "count": window.count,
                    "first_ns": window.first_ns,
                    "last_ns": window.last_ns,
                    "hist": window.hist.to_dict(),
                    "cpu_s": time.process_time() - window.cpu0,
                    "seq": _seq_totals(subs, last).to_dict(),
                }
            )
        elif cmd == "storm":
            inbox.send(await resume_storm(endpoint, subs, msg.get("timeout", 30.0)))
        elif cmd == "close":
            for sub in subs:
                if sub.conn is not None:
                    sub.conn.close()
            await asyncio.sleep(0.1)
            return
