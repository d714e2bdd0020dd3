"""Ably realtime protocol (msgpack) over `FastWebSocket`, and the same calls against a bare server.

`RelayConnection` speaks what ably-js speaks: CONNECTED, ATTACH/ATTACHED, MESSAGE with msgSerial
and ACK/NACK, resume. `BareConnection` has the same methods against `bench.ceilings` (no handshake,
no ACK unless the server echoes), so a scenario drives both with one code path. Payload `data`
strings carry "SEQ SEND_TIME_NS" so the receiver can check order and measure latency.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import msgpack

from .fastws import FastWebSocket, connect

__all__ = [
    "BareConnection",
    "Endpoint",
    "ProtocolError",
    "RelayConnection",
    "delivery_frame",
    "make_data",
    "parse_data",
]

ACK, NACK, CONNECTED, DISCONNECTED, ERROR = 1, 2, 4, 6, 9
ATTACH, ATTACHED, DETACHED, MESSAGE = 10, 11, 13, 15
FLAG_RESUMED = 1 << 2

_packb = msgpack.Packer(use_bin_type=True).pack


class ProtocolError(Exception):
    """The relay answered with an ERROR, NACK or DETACHED; `code` is the Ably error code."""

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass(frozen=True)
class Endpoint:
    """Where the server under test listens; `key` is None for a bare ceiling server."""

    host: str
    port: int
    key: str | None = None

    @property
    def is_relay(self) -> bool:
        return self.key is not None

    def realtime_target(self, echo: bool = True, resume: str | None = None) -> str:
        params = {"key": self.key or "", "format": "msgpack", "v": "6", "heartbeats": "false"}
        params["echo"] = "true" if echo else "false"
        if resume:
            params["resume"] = resume
        return "/?" + urlencode(params)

    def bare_target(self, role: str, channel: str = "c") -> str:
        return f"/{role}?channel={quote(channel)}"


def make_data(seq: int, pad: int = 0) -> str:
    """The payload string: sequence number, wall-clock send time in ns, optional padding."""
    if pad:
        return f"{seq} {time.time_ns()} {'x' * pad}"
    return f"{seq} {time.time_ns()}"


def parse_data(data: Any) -> tuple[int, int]:
    """(seq, send_time_ns) from a payload made by `make_data` (str or bytes)."""
    if isinstance(data, bytes | bytearray):
        data = data.decode()
    parts = data.split(" ", 2)
    return int(parts[0]), int(parts[1])


def delivery_frame(channel: str, data: str, msg_serial: int = 0) -> bytes:
    """A msgpack frame shaped and sized like a relay's MESSAGE delivery (for the bare ceilings)."""
    ts = time.time_ns() // 1_000_000
    return _packb(
        {
            "action": MESSAGE,
            "channel": channel,
            "channelSerial": "0000000001:00000000000000000001",
            "id": f"bareconn01:{msg_serial}",
            "connectionId": "bareconn01",
            "timestamp": ts,
            "msgSerial": msg_serial,
            "messages": [
                {
                    "id": f"bareconn01:{msg_serial}:0",
                    "name": "m",
                    "data": data,
                    "serial": "0000000001:00000000000000000001",
                    "timestamp": ts,
                }
            ],
        }
    )


Handler = Callable[[dict[str, Any]], None]
AckHandler = Callable[[dict[str, Any]], None]


def _noop(pm: dict[str, Any]) -> None:
    return None


class RelayConnection:
    """One realtime connection to the relay. Callbacks run inside `data_received`: be quick."""

    def __init__(self, ws: FastWebSocket, endpoint: Endpoint, on_delivery: Handler = _noop) -> None:
        self.ws = ws
        self.endpoint = endpoint
        self.on_delivery: Handler = on_delivery
        self.on_ack: AckHandler = _noop
        self.on_close: Callable[[], None] = lambda: None
        self.connection_id: str | None = None
        self.connection_key: str | None = None
        self.connected_error: dict[str, Any] | None = None
        self.msg_serial = 0
        self.fatal: dict[str, Any] | None = None
        self._connected: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._attaching: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._unpackb = msgpack.unpackb
        ws.on_close = self._closed
        ws.set_handler(self._on_frame)

    @classmethod
    async def open(
        cls,
        endpoint: Endpoint,
        echo: bool = True,
        resume: str | None = None,
        limit_s: float = 10.0,
        on_delivery: Handler = _noop,
    ) -> RelayConnection:
        """Connect and wait for CONNECTED; `on_delivery` is wired before any frame can arrive."""
        target = endpoint.realtime_target(echo, resume)
        ws = await connect(endpoint.host, endpoint.port, target, limit_s)
        conn = cls(ws, endpoint, on_delivery)
        async with asyncio.timeout(limit_s):
            await conn._connected
        return conn

    def _closed(self) -> None:
        error = ConnectionError("connection closed")
        for fut in [self._connected, *self._attaching.values()]:
            if not fut.done():
                fut.set_exception(error)
        self.on_close()

    def _on_frame(self, payload: bytes) -> None:
        pm = self._unpackb(payload)
        action = pm.get("action")
        if action == MESSAGE:
            self.on_delivery(pm)
        elif action in (ACK, NACK):
            self.on_ack(pm)
        elif action == CONNECTED:
            self.connection_id = pm.get("connectionId")
            self.connection_key = (pm.get("connectionDetails") or {}).get("connectionKey")
            self.connected_error = pm.get("error")
            if not self._connected.done():
                self._connected.set_result(pm)
        elif action == ATTACHED:
            fut = self._attaching.pop(pm.get("channel"), None)
            if fut is not None and not fut.done():
                fut.set_result(pm)
        elif action in (ERROR, DETACHED, DISCONNECTED):
            error = pm.get("error") or {}
            exc = ProtocolError(error.get("code"), error.get("message", str(pm)))
            channel = pm.get("channel")
            if channel is not None and channel in self._attaching:
                fut = self._attaching.pop(channel)
                if not fut.done():
                    fut.set_exception(exc)
            elif channel is None:
                self.fatal = error or {"message": f"action {action}"}
                if not self._connected.done():
                    self._connected.set_exception(exc)

    async def attach(
        self, channel: str, channel_serial: str | None = None, limit_s: float = 10.0
    ) -> dict[str, Any]:
        """ATTACH and wait for ATTACHED; raises ProtocolError on a channel error."""
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._attaching[channel] = fut
        frame: dict[str, Any] = {"action": ATTACH, "channel": channel}
        if channel_serial is not None:
            frame["channelSerial"] = channel_serial
        self.ws.send(_packb(frame))
        async with asyncio.timeout(limit_s):
            return await fut

    def publish(self, channel: str, messages: list[dict[str, Any]]) -> int:
        """Send one MESSAGE; returns its msgSerial (the ACK arrives through `on_ack`)."""
        serial = self.msg_serial
        self.msg_serial += 1
        frame = {"action": MESSAGE, "channel": channel, "msgSerial": serial, "messages": messages}
        self.ws.send(_packb(frame))
        return serial

    def abort(self) -> None:
        self.ws.abort()

    def close(self) -> None:
        self.ws.close()


class BareConnection:
    """The same surface against a `bench.ceilings` server: role 'sub', 'pub', 'echo' or 'idle'."""

    def __init__(self, ws: FastWebSocket, role: str) -> None:
        self.ws = ws
        self.role = role
        self.on_delivery: Handler = _noop
        self.on_ack: AckHandler = _noop
        self.on_close: Callable[[], None] = lambda: None
        self.connection_id = "bare"
        self.connection_key: str | None = None
        self.connected_error: dict[str, Any] | None = None
        self.msg_serial = 0
        self.fatal: dict[str, Any] | None = None
        self._unpackb = msgpack.unpackb
        ws.on_close = lambda: self.on_close()
        ws.set_handler(self._on_frame)

    @classmethod
    async def open(
        cls, endpoint: Endpoint, role: str, channel: str = "c", limit_s: float = 10.0
    ) -> BareConnection:
        target = endpoint.bare_target(role, channel)
        ws = await connect(endpoint.host, endpoint.port, target, limit_s)
        return cls(ws, role)

    def _on_frame(self, payload: bytes) -> None:
        pm = self._unpackb(payload)
        if self.role == "echo":
            self.on_ack(pm)
        else:
            self.on_delivery(pm)

    async def attach(
        self, channel: str, channel_serial: str | None = None, limit_s: float = 10.0
    ) -> dict[str, Any]:
        return {"action": ATTACHED, "channel": channel, "flags": 0}

    def publish(self, channel: str, messages: list[dict[str, Any]]) -> int:
        serial = self.msg_serial
        self.msg_serial += 1
        self.ws.send(delivery_frame(channel, messages[0]["data"], serial))
        return serial

    def abort(self) -> None:
        self.ws.abort()

    def close(self) -> None:
        self.ws.close()
