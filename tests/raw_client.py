"""A bare Ably protocol client over `websockets`, for tests that must send what no SDK would.

Importable from every test folder as `raw_client` (tests/conftest.py puts tests/ on sys.path).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import msgpack
import websockets

__all__ = ["ConnectRaw", "RawClient", "StalledSocket", "b64", "connect_raw"]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class RawClient:
    """A bare Ably protocol connection: send dicts, receive dicts.

    JSON travels in text frames, msgpack in binary frames, as the relay's `format` parameter says.
    """

    def __init__(self, ws: websockets.ClientConnection, format: str) -> None:
        self.ws = ws
        self.format = format
        self.msg_serial = 0

    async def send(self, message: dict[str, Any]) -> None:
        if self.format == "json":
            await self.ws.send(json.dumps(message))
        else:
            await self.ws.send(msgpack.packb(message, use_bin_type=True))

    async def send_raw(self, frame: str | bytes) -> None:
        await self.ws.send(frame)

    async def recv(self, within: float = 5.0) -> dict[str, Any]:
        async with asyncio.timeout(within):
            frame = await self.ws.recv()
        if isinstance(frame, str):
            return json.loads(frame)
        return msgpack.unpackb(frame, raw=False)

    async def recv_action(self, *actions: int, within: float = 5.0) -> dict[str, Any]:
        """The next message with one of `actions` within `within` seconds, skipping the rest."""
        async with asyncio.timeout(within):
            while True:
                message = await self.recv(within=within)
                if message.get("action") in actions:
                    return message

    async def attach(self, channel: str) -> dict[str, Any]:
        await self.send({"action": 10, "channel": channel})
        return await self.recv_action(11, 9, 13)

    async def publish(self, channel: str, messages: list[dict[str, Any]]) -> int:
        """Send one MESSAGE; return its msgSerial (the ACK/NACK will carry it)."""
        serial = self.msg_serial
        self.msg_serial += 1
        await self.send(
            {"action": 15, "channel": channel, "msgSerial": serial, "messages": messages}
        )
        return serial

    async def close(self) -> None:
        await self.ws.close()


ConnectRaw = Callable[..., Awaitable[RawClient]]
"""The `raw` fixture: connect(format='json', **params) -> a CONNECTED RawClient."""


async def connect_raw(
    port: int, key: str, format: str = "json", **params: str
) -> tuple[RawClient, dict[str, Any]]:
    """Open a raw connection; return it with the first protocol message (CONNECTED, or the
    ERROR or DISCONNECTED that refuses it)."""
    query = {"key": key, "format": format, "v": "6", "heartbeats": "true", **params}
    url = f"ws://127.0.0.1:{port}/?" + "&".join(f"{k}={v}" for k, v in query.items())
    ws = await websockets.connect(url, max_size=None, open_timeout=5)
    client = RawClient(ws, format)
    first = await client.recv_action(4, 6, 9)
    return client, first


class StalledSocket:
    """A WebSocket client on a bare TCP socket that reads nothing after the handshake, as a
    subscriber on a stalled network does; `frames()` later reads everything the relay sent.

    The receive buffer is made small so the relay's own buffers fill after little data.
    """

    def __init__(self, sock: socket.socket, pending: bytes) -> None:
        self.sock = sock
        self._buffer = bytearray(pending)

    @classmethod
    async def open(cls, port: int, key: str, fmt: str = "json") -> StalledSocket:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        nonce = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /?key={key}&format={fmt}&v=6 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {nonce}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        await loop.sock_sendall(sock, request.encode())
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = await loop.sock_recv(sock, 4096)
            assert chunk, "closed during the handshake"
            received += chunk
        head, _, rest = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(sock, rest)

    async def send(self, message: dict[str, Any]) -> None:
        await self._send_frame(0x81, json.dumps(message).encode())

    async def _send_frame(self, first: int, payload: bytes) -> None:
        """A short masked frame (clients must mask)."""
        assert len(payload) < 126
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        frame = bytes([first, 0x80 | len(payload)]) + mask + masked
        await asyncio.get_running_loop().sock_sendall(self.sock, frame)

    async def frames(self, within: float = 30.0) -> list[tuple[int, bytes]]:
        """Every frame (opcode, payload) until the relay closes the TCP connection, answering
        its CLOSE as a client does (and reading on, to see whether anything follows it)."""
        loop = asyncio.get_running_loop()
        answered = False
        async with asyncio.timeout(within):
            while True:
                try:
                    chunk = await loop.sock_recv(self.sock, 1 << 20)
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    return self._parse()
                self._buffer += chunk
                if not answered and _closes(self._buffer):
                    answered = True
                    with contextlib.suppress(ConnectionError):
                        await self._send_frame(0x88, b"\x03\xe8")

    def _parse(self) -> list[tuple[int, bytes]]:
        frames: list[tuple[int, bytes]] = []
        data, at = bytes(self._buffer), 0
        while at < len(data):
            opcode, length, start = _frame_header(data, at)
            assert start + length <= len(data), "the stream ended inside a frame"
            frames.append((opcode, data[start : start + length]))
            at = start + length
        return frames

    def close(self) -> None:
        self.sock.close()


def _frame_header(data: bytes, at: int) -> tuple[int, int, int]:
    """(opcode, payload length, payload offset) of the unmasked frame at `at`."""
    opcode, length, start = data[at] & 0x0F, data[at + 1] & 0x7F, at + 2
    if length == 126:
        (length,), start = struct.unpack_from("!H", data, start), start + 2
    elif length == 127:
        (length,), start = struct.unpack_from("!Q", data, start), start + 8
    return opcode, length, start


def _closes(data: bytearray) -> bool:
    """Whether the complete frames in `data` include a CLOSE."""
    at = 0
    while at + 2 <= len(data):
        if at + 10 > len(data) and data[at + 1] & 0x7F >= 126:
            return False
        opcode, length, start = _frame_header(bytes(data[at : at + 10]), 0)
        if opcode == 0x8:
            return True
        at += start + length
    return False
