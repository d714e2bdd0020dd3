"""The REST calls the storage-fault tests make with the app's key: publish, append, read a
path, read a channel's history. Importable from every test folder as `store_calls`."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import aiohttp

from channel_relay.server import Relay

__all__ = ["HEADERS", "append", "get", "history", "post"]

HEADERS = {"Authorization": "Basic " + base64.b64encode(b"app1.key1:secret1").decode()}


async def post(
    http: aiohttp.ClientSession,
    relay: Relay,
    channel: str,
    body: Any,
    headers: dict[str, str] = HEADERS,
) -> tuple[int, Any]:
    """Publish `body` (a message or a list of them): (status, JSON answer)."""
    async with http.post(
        f"{relay.url}/channels/{channel}/messages", json=body, headers=headers
    ) as resp:
        return resp.status, await resp.json()


async def append(
    http: aiohttp.ClientSession, relay: Relay, channel: str, serial: str, data: str
) -> tuple[int, Any]:
    """Append `data` to the message at `serial`: (status, JSON answer)."""
    async with http.patch(
        f"{relay.url}/channels/{channel}/messages/{quote(serial)}",
        json={"action": 5, "data": data},
        headers=HEADERS,
    ) as resp:
        return resp.status, await resp.json()


async def get(http: aiohttp.ClientSession, relay: Relay, path: str) -> tuple[int, Any]:
    async with http.get(f"{relay.url}{path}", headers=HEADERS) as resp:
        return resp.status, await resp.json()


async def history(http: aiohttp.ClientSession, relay: Relay, channel: str) -> list[Any]:
    """The data of the channel's messages, oldest first."""
    status, body = await get(http, relay, f"/channels/{channel}/messages?direction=forwards")
    assert status == 200, body
    return [m["data"] for m in body]
