"""Raw protocol and REST helpers for the interop tests: what the SDK cannot be made to send.

Importable from tests in this folder as `interop_support` (pytest puts the folder on sys.path).
The raw protocol client lives in tests/raw_client.py (shared with tests/integration) and is
re-exported here.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol
from urllib.parse import quote

import aiohttp
from raw_client import ConnectRaw, RawClient, b64, connect_raw

__all__ = [
    "ConnectRaw",
    "RawClient",
    "RunNode",
    "b64",
    "connect_raw",
    "rest_history",
]


class RunNode(Protocol):
    """The `run_node` fixture: run a script of scripts/ against the relay, return its RESULT."""

    def __call__(
        self,
        script: str,
        *,
        format: str = "msgpack",
        args: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        deadline: float = 30.0,
        key: str | None = None,
    ) -> Awaitable[dict[str, Any]]: ...


async def rest_history(
    port: int, key: str, channel: str, **params: str
) -> tuple[list[dict[str, Any]], int]:
    """Every message of a channel's REST history, following `Link: rel="next"`; (items, pages)."""
    auth = "Basic " + b64(key.encode())
    base = f"http://127.0.0.1:{port}/channels/{quote(channel, safe='')}/"
    url = base + "messages?" + "&".join(f"{k}={v}" for k, v in params.items())
    items: list[dict[str, Any]] = []
    pages = 0
    async with aiohttp.ClientSession() as session:
        while url:
            async with session.get(
                url, headers={"Authorization": auth, "Accept": "application/json"}
            ) as resp:
                assert resp.status == 200, f"GET {url}: {resp.status} {await resp.text()}"
                items.extend(await resp.json())
                pages += 1
                url = _next_link(base, resp.headers.getall("Link", []))
    return items, pages


def _next_link(base: str, headers: list[str]) -> str:
    for header in headers:
        for part in header.split(","):
            target, _, rel = part.partition(";")
            if rel.strip() == 'rel="next"':
                link = target.strip().strip("<>")
                assert link.startswith("./"), f"ably-js only follows ./ links, got {link}"
                return base + link[2:]
    return ""
