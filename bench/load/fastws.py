"""A minimal asyncio WebSocket client for load generation.

The load generator must consume as many frames per second as the server under test can produce,
on one core. The asyncio layer of `websockets` costs a future and a queue hop per frame; this
protocol parses frames straight out of `data_received`, hands each payload to a callback, and masks
outgoing frames with the C `apply_mask` of `websockets`. It handles what a relay or a ceiling server
sends: whole or fragmented text/binary frames, ping (answered), pong, close. Nothing here is Ably.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
from collections.abc import Callable

try:
    from websockets.speedups import apply_mask  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - the pure-Python fallback
    from websockets.utils import apply_mask

__all__ = ["FastWebSocket", "HandshakeError", "connect"]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class HandshakeError(Exception):
    """The server did not answer the upgrade with 101 and a valid accept header."""


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """One masked client frame (FIN set)."""
    n = len(payload)
    mask = os.urandom(4)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return header + mask + apply_mask(payload, mask)


class FastWebSocket(asyncio.Protocol):
    """Client side of one WebSocket; `on_message(payload)` runs for every complete data message."""

    def __init__(self, host: str, port: int, target: str) -> None:
        self._early: list[bytes] = []
        self.on_message: Callable[[bytes], None] = self._early.append
        self.on_close: Callable[[], None] = lambda: None
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._host = host
        self._port = port
        self._target = target
        self._key = base64.b64encode(os.urandom(16))
        self._opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buf = b""
        self._fragments: list[bytes] = []
        self._handshaken = False

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        request = (
            f"GET {self._target} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {self._key.decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        transport.write(request.encode())

    def data_received(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        if not self._handshaken:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self._buf = buf
                return
            self._check_handshake(buf[:end])
            if not self._handshaken:
                return
            buf = buf[end + 4 :]
        self._buf = self._parse(buf)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self._opened.done():
            self._opened.set_exception(ConnectionError("closed during the handshake"))
        self.on_close()

    # -- frames

    def _check_handshake(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        expected = base64.b64encode(hashlib.sha1(self._key + _GUID).digest())
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if b" 101 " not in lines[0] + b" " or headers.get(b"sec-websocket-accept") != expected:
            error = HandshakeError(lines[0].decode(errors="replace"))
            if not self._opened.done():
                self._opened.set_exception(error)
            assert self.transport is not None
            self.transport.close()
            return
        self._handshaken = True
        self._opened.set_result(None)

    def _parse(self, buf: bytes) -> bytes:
        pos = 0
        n = len(buf)
        on_message = self.on_message
        while n - pos >= 2:
            b0 = buf[pos]
            length = buf[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if n - pos < 4:
                    break
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                head = 4
            elif length == 127:
                if n - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            end = pos + head + length
            if end > n:
                break
            payload = buf[pos + head : end]
            pos = end
            opcode = b0 & 0x0F
            if b0 & 0x80 and opcode in (OP_BINARY, OP_TEXT):
                on_message(payload)
            else:
                self._control(b0, opcode, payload)
                if self.closed:
                    return b""
        return buf[pos:] if pos < n else b""

    def _control(self, b0: int, opcode: int, payload: bytes) -> None:
        if opcode in (OP_BINARY, OP_TEXT, OP_CONT):
            self._fragments.append(payload)
            if b0 & 0x80:
                whole = b"".join(self._fragments)
                self._fragments.clear()
                self.on_message(whole)
        elif opcode == OP_PING:
            self.send_frame(OP_PONG, payload)
        elif opcode == OP_CLOSE:
            self.send_frame(OP_CLOSE, payload[:2])
            self.abort()

    # -- API

    async def opened(self) -> None:
        await self._opened

    def set_handler(self, on_message: Callable[[bytes], None]) -> None:
        """Install the message callback; messages that came with the handshake go to it first."""
        self.on_message = on_message
        early, self._early = self._early, []
        for payload in early:
            on_message(payload)

    def send(self, payload: bytes) -> None:
        self.send_frame(OP_BINARY, payload)

    def send_frame(self, opcode: int, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode_frame(opcode, payload))

    def abort(self) -> None:
        """Drop the TCP connection without a closing handshake, as a network failure does."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.send_frame(OP_CLOSE, struct.pack("!H", 1000))
            self.transport.close()


async def connect(host: str, port: int, target: str, limit_s: float = 10.0) -> FastWebSocket:
    """Open a WebSocket to ws://host:port{target}; raises on refusal or after `limit_s` seconds."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(limit_s):
        factory = lambda: FastWebSocket(host, port, target)  # noqa: E731
        _, proto = await loop.create_connection(factory, host, port)
        await proto.opened()
    return proto
