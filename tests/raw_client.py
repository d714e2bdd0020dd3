"""A bare Ably protocol client over `websockets`, for tests that must send what no SDK would.

Importable from every test folder as `raw_client` (tests/conftest.py puts tests/ on sys.path).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import msgpack
import websockets

__all__ = ["ConnectRaw", "RawClient", "b64", "connect_raw"]


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
    """Open a raw connection; return it with the first protocol message (CONNECTED or ERROR)."""
    query = {"key": key, "format": format, "v": "6", "heartbeats": "true", **params}
    url = f"ws://127.0.0.1:{port}/?" + "&".join(f"{k}={v}" for k, v in query.items())
    ws = await websockets.connect(url, max_size=None, open_timeout=5)
    client = RawClient(ws, format)
    first = await client.recv_action(4, 9)
    return client, first
