"""Publisher workers: a paced single-channel publisher, a closed-loop durable publisher pool and
the token-streaming appender. All record publish-to-ACK latency and check ACKs come once, in order.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..stats import LatencyHistogram, SeqTotals, SeqTracker
from .wire import NACK, BareConnection, Endpoint, RelayConnection, make_data
from .worker import until

__all__ = ["durable", "paced", "streaming"]

Conn = RelayConnection | BareConnection


class AckBook:
    """Outstanding msgSerials of one connection: latency on ACK, order check, NACK codes."""

    def __init__(self, hist: LatencyHistogram, nacks: dict[str, int]) -> None:
        self.pending: dict[int, int] = {}
        self.hist = hist
        self.nacks = nacks
        self.tracker = SeqTracker(0)
        self.acked = 0
        self.last_pm: dict[str, Any] | None = None

    def sent(self, serial: int) -> None:
        self.pending[serial] = time.time_ns()

    def on_ack(self, pm: dict[str, Any]) -> int:
        now = time.time_ns()
        first = pm["msgSerial"]
        count = pm.get("count") or 1
        self.last_pm = pm
        nack = pm.get("action") == NACK
        if nack:
            code = str((pm.get("error") or {}).get("code"))
            self.nacks[code] = self.nacks.get(code, 0) + count
        for serial in range(first, first + count):
            self.tracker.see(serial)
            sent = self.pending.pop(serial, None)
            if sent is not None and not nack:
                self.hist.add_us((now - sent) // 1000)
                self.acked += 1
        return count


async def _open_publisher(endpoint: Endpoint, channel: str, role: str) -> Conn:
    if endpoint.is_relay:
        conn = await RelayConnection.open(endpoint, echo=False)
        await conn.attach(channel)
        return conn
    return await BareConnection.open(endpoint, role, channel)


async def _drain(books: list[AckBook], limit_s: float) -> None:
    await until(lambda: not any(b.pending for b in books), limit_s)


def _ack_totals(books: list[AckBook], conns: list[Conn]) -> SeqTotals:
    totals = SeqTotals()
    for book, conn in zip(books, conns, strict=True):
        totals.add(book.tracker, conn.msg_serial - 1)
    return totals


async def paced(params: dict[str, Any], inbox: Any) -> None:
    """One connection publishing to one channel at a fixed rate. Commands: run {rate, duration?}
    (duration None: until `stop`), stop, close."""
    endpoint = Endpoint(**params["endpoint"])
    channel = params["channel"]
    pad = params.get("pad", 0)
    conn = await _open_publisher(endpoint, channel, "pub")
    hist = LatencyHistogram()
    nacks: dict[str, int] = {}
    book = AckBook(hist, nacks)
    conn.on_ack = book.on_ack
    acks = endpoint.is_relay
    inbox.send({"ready": 1})
    seq = 0
    while True:
        msg = await inbox.recv(limit_s=params.get("idle_timeout", 900))
        if msg["cmd"] == "close":
            conn.close()
            return
        if msg["cmd"] != "run":
            continue
        rate: float = msg["rate"]
        duration: float | None = msg.get("duration")
        hist.reset()
        first = seq
        loop = asyncio.get_running_loop()
        start = loop.time()
        stop_requested = False
        while not stop_requested:
            now = loop.time()
            if duration is not None and now - start >= duration:
                break
            due = int((now - start) * rate) + 1 - (seq - first)
            for _ in range(min(due, 5000)):
                serial = conn.publish(channel, [{"name": "m", "data": make_data(seq, pad)}])
                if acks:
                    book.sent(serial)
                seq += 1
            await asyncio.sleep(0.001)
            if duration is None and inbox.poll():
                stop_requested = (await inbox.recv())["cmd"] == "stop"
        elapsed = loop.time() - start
        await _drain([book], 10.0)
        inbox.send(
            {
                "first_seq": first,
                "last_seq": seq - 1,
                "sent": seq - first,
                "elapsed": elapsed,
                "rate": (seq - first) / elapsed if elapsed else 0.0,
                "ack": hist.summary() if acks else None,
                "unacked": len(book.pending) if acks else 0,
                "nacks": nacks,
                "ack_seq": _ack_totals([book], [conn]).to_dict() if acks else None,
                "fatal": conn.fatal,
            }
        )


async def durable(params: dict[str, Any], inbox: Any) -> None:
    """`publishers` connections over `channels` (each attached to its share), each keeping `window`
    publishes in flight: a new one leaves as soon as an ACK comes back. Command: run {duration}."""
    endpoint = Endpoint(**params["endpoint"])
    channels: list[str] = params["channels"]
    n: int = params["publishers"]
    window: int = params["window"]
    pad = params.get("pad", 0)
    shares = [channels[i::n] for i in range(n)]
    conns: list[Conn] = []
    for share in shares:
        if endpoint.is_relay:
            conn = await RelayConnection.open(endpoint, echo=False)
            await asyncio.gather(*(conn.attach(ch) for ch in share))
        else:
            conn = await BareConnection.open(endpoint, "echo", share[0])
        conns.append(conn)
    hist = LatencyHistogram()
    nacks: dict[str, int] = {}
    books = [AckBook(hist, nacks) for _ in conns]
    inbox.send({"ready": len(conns)})
    msg = await inbox.recv(limit_s=params.get("idle_timeout", 900))
    if msg["cmd"] != "run":
        return
    running = True
    counters = [0] * n

    def sender(i: int) -> Any:
        conn, book, share = conns[i], books[i], shares[i]

        def send_one() -> None:
            k = counters[i]
            counters[i] = k + 1
            data = make_data(k, pad)
            book.sent(conn.publish(share[k % len(share)], [{"name": "m", "data": data}]))

        def on_ack(pm: dict[str, Any]) -> None:
            count = book.on_ack(pm)
            if running:
                for _ in range(count):
                    send_one()

        conn.on_ack = on_ack
        return send_one

    senders = [sender(i) for i in range(n)]
    start = time.monotonic()
    for send_one in senders:
        for _ in range(window):
            send_one()
    await asyncio.sleep(msg["duration"])
    running = False
    elapsed = time.monotonic() - start
    acked_in_window = sum(b.acked for b in books)
    await _drain(books, 10.0)
    inbox.send(
        {
            "acked": acked_in_window,
            "elapsed": elapsed,
            "rate": acked_in_window / elapsed,
            "ack": hist.summary(),
            "unacked": sum(len(b.pending) for b in books),
            "nacks": nacks,
            "ack_seq": _ack_totals(books, conns).to_dict(),
            "fatal": next((c.fatal for c in conns if c.fatal), None),
        }
    )
    await inbox.recv(limit_s=60)
    for conn in conns:
        conn.close()


async def streaming(params: dict[str, Any], inbox: Any) -> None:
    """One connection per streamed message: publish the create, then append fragments at `rate`/s.
    Command: run {duration}. A NACK on the create (e.g. 93002) is reported in the ready reply."""
    endpoint = Endpoint(**params["endpoint"])
    channels: list[str] = params["channels"]
    rate: float = params["rate"]
    pad = params.get("pad", 0)
    hist = LatencyHistogram()
    nacks: dict[str, int] = {}
    conns: list[Conn] = []
    books: list[AckBook] = []
    targets: list[str] = []
    for ch in channels:
        conn = await _open_publisher(endpoint, ch, "pub")
        book = AckBook(hist, nacks)
        conn.on_ack = book.on_ack
        conns.append(conn)
        books.append(book)
    track = endpoint.is_relay  # the bare broadcast server sends no ACK
    # the creates: seq 0 of every stream
    for ch, conn, book in zip(channels, conns, books, strict=True):
        serial = conn.publish(ch, [{"name": "stream", "data": make_data(0, pad)}])
        if track:
            book.sent(serial)
    if track:
        await _drain(books, 10.0)
        for book in books:
            pm = book.last_pm or {}
            if pm.get("action") == NACK or not pm.get("res"):
                error = pm.get("error") or {"message": f"no serial in ACK {pm}"}
                inbox.send({"ready": 0, "unavailable": f"create refused: {error}"})
                await inbox.recv(limit_s=60)
                return
            targets.append(pm["res"][0]["serials"][0])
        # probe: the first append of every stream (seq 1) must be accepted
        for i, conn in enumerate(conns):
            append = {"action": 5, "serial": targets[i], "data": make_data(1, pad)}
            books[i].sent(conn.publish(channels[i], [append]))
        await _drain(books, 10.0)
        for book in books:
            pm = book.last_pm or {}
            if pm.get("action") == NACK:
                error = pm.get("error") or {}
                inbox.send({"ready": 0, "unavailable": f"append refused: {error}"})
                await inbox.recv(limit_s=60)
                return
    else:
        targets = ["bare"] * len(conns)
    hist.reset()
    nacks.clear()
    inbox.send({"ready": len(conns)})
    msg = await inbox.recv(limit_s=params.get("idle_timeout", 900))
    if msg["cmd"] != "run":
        return
    duration: float = msg["duration"]
    loop = asyncio.get_running_loop()
    n = len(conns)
    first = 1 if track else 0  # the probe append already went out
    sent = [first] * n
    start = loop.time()
    offsets = [i / (n * rate) for i in range(n)]
    while True:
        now = loop.time()
        if now - start >= duration:
            break
        for i in range(n):
            due = int((now - start - offsets[i]) * rate) + 1 + first - sent[i]
            for _ in range(min(due, 1000)):
                sent[i] += 1
                append = {"action": 5, "serial": targets[i], "data": make_data(sent[i], pad)}
                serial = conns[i].publish(channels[i], [append])
                if track:
                    books[i].sent(serial)
        await asyncio.sleep(0.002)
    elapsed = loop.time() - start
    acked_in_window = sum(b.acked for b in books) - 2 * n if track else sum(sent)
    await _drain(books, 10.0)
    inbox.send(
        {
            "appends": sum(sent) - first * n,
            "acked": acked_in_window,
            "elapsed": elapsed,
            "rate": acked_in_window / elapsed,
            "ack": hist.summary() if track else None,
            "unacked": sum(len(b.pending) for b in books),
            "nacks": nacks,
            "last": {ch: sent[i] for i, ch in enumerate(channels)},
            "fatal": next((c.fatal for c in conns if c.fatal), None),
        }
    )
    await inbox.recv(limit_s=60)
    for conn in conns:
        conn.close()
