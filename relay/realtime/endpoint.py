"""The WebSocket endpoint: the connect handshake, the live connections and their heartbeats."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import web

from relay.apps import Apps
from relay.auth.identity import Identity
from relay.auth.keys import authenticate_key
from relay.channels.registry import ChannelRegistry
from relay.config import Settings
from relay.protocol.actions import Action
from relay.protocol.codec import Format, encode_frame
from relay.protocol.errors import AblyError
from relay.realtime.connection import Connection
from relay.realtime.frames import ws_frame

__all__ = ["RealtimeEndpoint"]

log = logging.getLogger(__name__)


class RealtimeEndpoint:
    def __init__(self, settings: Settings, apps: Apps, channels: ChannelRegistry) -> None:
        self.settings = settings
        self.apps = apps
        self.channels = channels
        self.connections: dict[str, Connection] = {}
        self._heartbeats: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._heartbeats = asyncio.create_task(self._heartbeat_loop(), name="relay-heartbeats")

    async def stop(self) -> None:
        if self._heartbeats is not None:
            self._heartbeats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeats
        for connection in list(self.connections.values()):
            connection.closed = True
            await connection.ws.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Upgrade, authenticate from the query string, send CONNECTED, then serve frames."""
        ws = web.WebSocketResponse(
            autoping=True,
            compress=False,
            max_msg_size=self.settings.max_frame_size * 2,
        )
        await ws.prepare(request)
        transport = request.transport
        assert transport is not None
        query = request.query
        fmt: Format = "msgpack" if query.get("format") == "msgpack" else "json"
        try:
            identity = self._authenticate(query)
        except AblyError as error:
            # The SDK reads a connect-time ERROR as fatal for the connection, as Ably intends
            # for refused credentials.
            frame = {"action": Action.ERROR, "error": error.to_dict()}
            transport.write(ws_frame(encode_frame(frame, fmt)))
            await ws.close()
            return ws
        connection = Connection(
            ws,
            transport,
            identity,
            fmt,
            echo=query.get("echo", "true") != "false",
            settings=self.settings,
            channels=self.channels,
        )
        self.connections[connection.connection_id] = connection
        try:
            connected = connection.connected_message()
            error = _continuity_error(query)
            if error is not None:
                connected["error"] = error.to_dict()
            connection.send(connected)
            await connection.serve()
        finally:
            self.connections.pop(connection.connection_id, None)
        return ws

    def _authenticate(self, query: Any) -> Identity:
        client_id = query.get("clientId")
        if client_id is not None and (not client_id or client_id == "*"):
            raise AblyError.invalid_client_id(f"Invalid clientId {client_id!r}")
        key = query.get("key")
        if key:
            return authenticate_key(key, self.apps.lookup, client_id)
        if query.get("access_token") or query.get("accessToken"):
            raise AblyError(40140, 401, "Token authentication is not available yet")
        raise AblyError.no_credentials("No authentication credentials given")

    async def _heartbeat_loop(self) -> None:
        """Keep every connection visibly alive within maxIdleInterval: a HEARTBEAT to any
        connection that was sent nothing since the last tick."""
        interval = self.settings.max_idle_interval / 3000
        seen: dict[str, int] = {}
        heartbeat: dict[str, Any] = {"action": Action.HEARTBEAT}
        while True:
            await asyncio.sleep(interval)
            current: dict[str, int] = {}
            for cid, connection in list(self.connections.items()):
                if seen.get(cid) == connection.frames_sent:
                    connection.send(heartbeat)
                current[cid] = connection.frames_sent
            seen = current


def _continuity_error(query: Any) -> AblyError | None:
    """A resume or recover the relay cannot honour: the SDK gets a new connection and this error,
    and knows that connection-level continuity (not channel continuity) was lost."""
    key = query.get("resume") or query.get("recover")
    if not key:
        return None
    if "!" not in key:
        return AblyError(80018, 400, "Invalid connection key")
    return AblyError(80008, 400, "Unable to recover connection: connection state expired")
