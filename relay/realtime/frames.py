"""WebSocket frames built once and written as bytes, so a fan-out never re-frames a payload, and
the writer that puts them on one socket.

A transport writes to its socket at once when nothing is buffered: a `send` per frame. One
commit's completions (`corked`) can write several frames to one socket (a subscriber of a stream
gets every append of the commit); they are held and leave in one write when the completions end.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from aiohttp import web

__all__ = ["FrameWriter", "at_uncork", "corked", "ws_frame"]

log = logging.getLogger(__name__)

_TEXT = 0x81
_BINARY = 0x82


def ws_frame(payload: bytes | str) -> bytes:
    """A final, unmasked server frame: text for a str (JSON), binary for bytes (msgpack)."""
    if isinstance(payload, str):
        data = payload.encode()
        first = _TEXT
    else:
        data = payload
        first = _BINARY
    n = len(data)
    if n < 126:
        header = struct.pack("!BB", first, n)
    elif n < 65536:
        header = struct.pack("!BBH", first, 126, n)
    else:
        header = struct.pack("!BBQ", first, 127, n)
    return header + data


# The writers holding frames while corked; None when not corked.
_corked: list[FrameWriter] | None = None
# What runs as the current cork ends (at_uncork).
_at_uncork: list[Callable[[], None]] = []


def at_uncork(callback: Callable[[], None]) -> bool:
    """Run `callback` as the current cork ends, before its frames leave, so what it writes
    leaves with them; False (not taken) when not corked."""
    if _corked is None:
        return False
    _at_uncork.append(callback)
    return True


@contextmanager
def corked() -> Iterator[None]:
    """Hold the frames written inside and write each socket's in one go at the end, in order."""
    global _corked
    if _corked is not None:
        yield
        return
    writers: list[FrameWriter] = []
    _corked = writers
    try:
        yield
    finally:
        try:
            # Callbacks may add callbacks; each failure is logged, as the loop would.
            index = 0
            while index < len(_at_uncork):
                try:
                    _at_uncork[index]()
                except Exception:
                    log.exception("callback at the end of a cork failed")
                index += 1
        finally:
            _at_uncork.clear()
            _corked = None
            for writer in writers:
                writer._flush()


class FrameWriter:
    """The outbound side of one WebSocket: pre-built frames written synchronously to its
    transport (a fan-out writes the same bytes to every subscriber without awaiting each), but
    never once aiohttp has begun closing the socket, so no byte follows a CLOSE frame.

    After each write to the transport, `queued` is told the bytes the socket holds (for the
    outbound bounds), unless it holds none and held none at the last report: the kernel takes
    nearly every frame at once, and then there is nothing to account for. Frames held by a cork
    are accounted when they leave, or at once if they take the socket past its own `bound`."""

    __slots__ = ("_bound", "_held", "_queued", "_reported", "_room", "_transport", "_ws")

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport,
        queued: Callable[[int], None] | None = None,
        bound: int = 0,
    ) -> None:
        self._ws = ws
        self._transport = transport
        self._queued = queued
        self._bound = bound
        self._held: list[bytes] | None = None
        # While frames are held: bytes the socket may still take before it passes `bound`.
        self._room = 0
        # Whether the last size reported to `queued` was not 0.
        self._reported = False

    @property
    def open(self) -> bool:
        return not self._ws.closed and not self._transport.is_closing()

    def write(self, frame: bytes) -> bool:
        """Queue `frame`; False (nothing written) once the socket is closing."""
        # `open` spelt out: this runs once per frame sent.
        transport = self._transport
        if self._ws.closed or transport.is_closing():
            return False
        held = self._held
        if held is not None:
            held.append(frame)
            self._room -= len(frame)
        elif _corked is not None:
            self._held = [frame]
            _corked.append(self)
            self._room = self._bound - transport.get_write_buffer_size() - len(frame)
        else:
            transport.write(frame)
            self._report(transport)
            return True
        if self._room < 0 and self._queued is not None:
            self._reported = True
            self._queued(self.buffered())
        return True

    def _flush(self) -> None:
        held = self._held
        self._held = None
        if held and self.open:
            transport = self._transport
            transport.write(held[0] if len(held) == 1 else b"".join(held))
            self._report(transport)

    def _report(self, transport: asyncio.Transport) -> None:
        queued = self._queued
        if queued is None:
            return
        size = transport.get_write_buffer_size()
        if size or self._reported:
            self._reported = size > 0
            queued(size)

    def buffered(self) -> int:
        """Bytes written and not yet taken by the kernel (held ones included)."""
        held = self._held
        size = self._transport.get_write_buffer_size()
        return size if held is None else size + sum(map(len, held))

    def abort(self) -> None:
        """Drop the socket at once, discarding what is buffered."""
        self._transport.abort()
