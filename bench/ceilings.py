"""Bare aiohttp servers, the ceilings the relay is measured against: `python -m bench.ceilings`.

Same library and settings as the relay (aiohttp web, WebSocketResponse(compress=False)), no
protocol, no auth, no storage:

- `/sub?channel=C` subscribes; `/pub?channel=C` publishes: each binary message is framed ONCE and
  the same bytes are written to every subscriber's transport of C (the fastest fan-out aiohttp
  allows);
- `/echo` sends every binary message back (`send_bytes`), the ceiling of a request/ACK round trip;
- `/idle` holds a connection and reads nothing but control frames;
- `GET /page` answers a prebuilt msgpack page of 100 messages (the HTTP cost of a history page).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import struct
import time

import msgpack
from aiohttp import WSMsgType, web

__all__ = ["build_app", "ws_frame"]


def ws_frame(payload: bytes) -> bytes:
    """An unmasked server binary frame."""
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x82, n) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x82, 126, n) + payload
    return struct.pack("!BBQ", 0x82, 127, n) + payload


def _history_page() -> bytes:
    ts = int(time.time() * 1000)
    items = [
        {
            "id": f"bareconn01:{i}:0",
            "connectionId": "bareconn01",
            "name": "m",
            "data": f"{i} {ts * 1_000_000}",
            "serial": f"0000000001:{i:020d}",
            "timestamp": ts,
            "action": 0,
        }
        for i in range(999_999, 999_899, -1)
    ]
    return msgpack.packb(items, use_bin_type=True)


def build_app() -> web.Application:
    rooms: dict[str, set[asyncio.Transport]] = {}
    page = _history_page()

    async def sub(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        room = rooms.setdefault(request.query.get("channel", "c"), set())
        transport = request.transport
        assert transport is not None
        room.add(transport)  # type: ignore[arg-type]
        try:
            async for _ in ws:
                pass
        finally:
            room.discard(transport)  # type: ignore[arg-type]
        return ws

    async def pub(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        room = rooms.setdefault(request.query.get("channel", "c"), set())
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                frame = ws_frame(msg.data)
                for transport in room:
                    transport.write(frame)
        return ws

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws

    async def idle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        async for _ in ws:
            pass
        return ws

    async def history(request: web.Request) -> web.Response:
        return web.Response(body=page, content_type="application/x-msgpack")

    app = web.Application()
    app.router.add_get("/sub", sub)
    app.router.add_get("/pub", pub)
    app.router.add_get("/echo", echo)
    app.router.add_get("/idle", idle)
    app.router.add_get("/page", history)
    return app


async def _serve(port: int) -> None:
    runner = web.AppRunner(build_app(), access_log=None, handle_signals=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096)
    await site.start()
    server = site._server
    assert server is not None and server.sockets
    actual = server.sockets[0].getsockname()[1]
    print(f"ceiling listening on http://127.0.0.1:{actual}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ceilings")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port))


if __name__ == "__main__":
    main()
