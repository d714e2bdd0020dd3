"""WebSocket frames built once and written as bytes, so a fan-out never re-frames a payload, and
the writer that puts them on one socket.

A transport writes to its socket at once when nothing is buffered: a `send` per frame. One
commit's completions (`corked`) can write several frames to one socket (a subscriber of a stream
gets every append of the commit); they are held and leave in one write when the completions end.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

__all__ = ["FrameWriter", "corked", "ws_frame"]

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
        _corked = None
        for writer in writers:
            writer._flush()


class FrameWriter:
    """The outbound side of one WebSocket: pre-built frames written synchronously to its
    transport (a fan-out writes the same bytes to every subscriber without awaiting each), but
    never once aiohttp has begun closing the socket, so no byte follows a CLOSE frame."""

    __slots__ = ("_held", "_held_bytes", "_transport", "_ws")

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport) -> None:
        self._ws = ws
        self._transport = transport
        self._held: list[bytes] | None = None
        self._held_bytes = 0

    @property
    def open(self) -> bool:
        return not self._ws.closed and not self._transport.is_closing()

    def write(self, frame: bytes) -> bool:
        """Queue `frame`; False (nothing written) once the socket is closing."""
        if not self.open:
            return False
        held = self._held
        if held is not None:
            held.append(frame)
            self._held_bytes += len(frame)
        elif _corked is not None:
            self._held = [frame]
            self._held_bytes = len(frame)
            _corked.append(self)
        else:
            self._transport.write(frame)
        return True

    def _flush(self) -> None:
        held = self._held
        self._held = None
        self._held_bytes = 0
        if held and self.open:
            self._transport.write(held[0] if len(held) == 1 else b"".join(held))

    def buffered(self) -> int:
        """Bytes written and not yet taken by the kernel (held ones included)."""
        return self._transport.get_write_buffer_size() + self._held_bytes

    def abort(self) -> None:
        """Drop the socket at once, discarding what is buffered."""
        self._transport.abort()
