"""WebSocket frames built once and written as bytes, so a fan-out never re-frames a payload, and
the writer that puts them on one socket."""

from __future__ import annotations

import asyncio
import struct

from aiohttp import web

__all__ = ["FrameWriter", "ws_frame"]

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


class FrameWriter:
    """The outbound side of one WebSocket: pre-built frames written synchronously to its
    transport (a fan-out writes the same bytes to every subscriber without awaiting each), but
    never once aiohttp has begun closing the socket, so no byte follows a CLOSE frame."""

    __slots__ = ("_transport", "_ws")

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport) -> None:
        self._ws = ws
        self._transport = transport

    @property
    def open(self) -> bool:
        return not self._ws.closed and not self._transport.is_closing()

    def write(self, frame: bytes) -> bool:
        """Queue `frame`; False (nothing written) once the socket is closing."""
        if not self.open:
            return False
        self._transport.write(frame)
        return True

    def buffered(self) -> int:
        """Bytes written and not yet taken by the kernel."""
        return self._transport.get_write_buffer_size()

    def abort(self) -> None:
        """Drop the socket at once, discarding what is buffered."""
        self._transport.abort()
