"""WebSocket frames built once and written as bytes, so a fan-out never re-frames a payload."""

from __future__ import annotations

import struct

__all__ = ["ws_frame"]

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
