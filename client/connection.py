"""One realtime connection: the WebSocket, the state machine, ACKs, heartbeats and resume.

The connection keeps itself up. When the socket drops (or goes silent for longer than
maxIdleInterval + 10 s) it reconnects with `resume=<connectionKey>`; when the relay resumes the
same connection, publishes that were not ACKed yet are sent again with their original msgSerial
(the relay drops the duplicates), otherwise they are renumbered from 0 and the loss of
continuity is reported. Channel re-attachment is the Realtime client's job (`on_connected`).
Token errors (40140-40149) in DISCONNECTED or ERROR renew the token and reconnect; a token with
a known expiry is renewed shortly before it lapses through an in-band AUTH.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import websockets
from websockets.asyncio.client import ClientConnection, connect

from channel_relay.client.auth import Auth
from channel_relay.client.errors import (
    AblyError,
    ConnectionFailedError,
    ContinuityLostError,
    error_from_info,
    is_token_error,
)
from channel_relay.client.events import EventEmitter
from channel_relay.protocol.actions import Action
from channel_relay.protocol.codec import Format, decode_frame, encode_frame

__all__ = ["Connection", "ConnectionState"]

log = logging.getLogger("channel_relay.client.connection")

# Ably's realtimeRequestTimeout: the slack added to maxIdleInterval, and the handshake deadline.
REQUEST_TIMEOUT = 10.0
# Actions whose ProtocolMessages take a msgSerial and expect an ACK or NACK.
_ACKED = frozenset({Action.MESSAGE, Action.PRESENCE, Action.ANNOTATION, Action.OBJECT})


class ConnectionState(enum.StrEnum):
    INITIALIZED = "initialized"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    SUSPENDED = "suspended"
    CLOSING = "closing"
    CLOSED = "closed"
    FAILED = "failed"


class _Reconnect(Exception):
    """Leave the read loop and connect again (after renewing the token if `renew`)."""

    def __init__(self, error: AblyError | None, renew: bool = False) -> None:
        super().__init__(str(error))
        self.error = error
        self.renew = renew


class _Fatal(Exception):
    def __init__(self, error: AblyError) -> None:
        super().__init__(str(error))
        self.error = error


class Connection(EventEmitter):
    """The connection of one Realtime client. Events: "state" (state, error), "connected"
    (resumed: bool, error), "message" (ProtocolMessage dict, for channel traffic),
    "continuity_lost" (ContinuityLostError).

    `send_and_ack` publishes a ProtocolMessage and waits for its ACK; it is queued while the
    connection is not CONNECTED and resent after a resume, so it completes exactly once.
    """

    def __init__(
        self,
        url: str,
        auth: Auth,
        *,
        fmt: Format = "msgpack",
        client_id: str | None = None,
        echo: bool = True,
        params: dict[str, str] | None = None,
        disconnected_retry: float = 15.0,
    ) -> None:
        super().__init__()
        self.url = url
        self.auth = auth
        self.format: Format = fmt
        self.client_id = client_id
        self.echo = echo
        self.params = params or {}
        self.disconnected_retry = disconnected_retry
        self.state = ConnectionState.INITIALIZED
        self.error: AblyError | None = None
        self.id: str | None = None
        self.key: str | None = None
        self.details: dict[str, Any] = {}
        self.ws: ClientConnection | None = None
        self._msg_serial = 0
        self._pending: dict[int, tuple[dict[str, Any], asyncio.Future[list[dict[str, Any]]]]] = {}
        self._pings: dict[str, asyncio.Future[None]] = {}
        self._send_lock = asyncio.Lock()
        self._runner: asyncio.Task[None] | None = None
        self._renewer: asyncio.Task[None] | None = None
        self._state_changed = asyncio.Event()
        self._closing = False
        self._wake = asyncio.Event()
        self._disconnected_since: float | None = None

    # Public API

    async def connect(self) -> None:
        """Start connecting (if not yet) and wait for CONNECTED.

        Raises ConnectionFailedError when the connection fails (bad credentials, ...).
        """
        if self._runner is None:
            self._closing = False
            self._runner = asyncio.create_task(self._run(), name="client-connection")
        await self.wait_for(ConnectionState.CONNECTED)

    async def wait_for(self, state: ConnectionState, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Wait until the connection is in `state`; raise if it fails or closes first."""
        async with asyncio.timeout(timeout):
            while self.state != state:
                if self.state in (ConnectionState.FAILED, ConnectionState.CLOSED):
                    raise self._terminal_error()
                self._state_changed.clear()
                await self._state_changed.wait()

    async def close(self) -> None:
        """CLOSE the connection (the relay discards its state: no resume after this)."""
        self._closing = True
        ws = self.ws
        if ws is not None and self.state == ConnectionState.CONNECTED:
            self._set_state(ConnectionState.CLOSING)
            with contextlib.suppress(Exception):
                await self._send_frame({"action": Action.CLOSE})
        for task in (self._runner, self._renewer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._runner = self._renewer = None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        self.ws = None
        self._set_state(ConnectionState.CLOSED)
        self._fail_pending(ConnectionFailedError(80017, 400, "Connection closed"))

    async def send(self, message: dict[str, Any]) -> None:
        """Send a ProtocolMessage that expects no ACK (ATTACH, DETACH, ...) if connected;
        dropped otherwise (channels re-send their ATTACH on every CONNECTED)."""
        if self.state == ConnectionState.CONNECTED:
            with contextlib.suppress(websockets.ConnectionClosed):
                await self._send_frame(message)

    def send_and_ack(self, message: dict[str, Any]) -> asyncio.Future[list[dict[str, Any]]]:
        """Queue a MESSAGE/PRESENCE; the future resolves to the ACK's `res` entries for it
        ([{"serials": [...]}]) or raises the NACK's AblyError. Sending happens in call order."""
        if self.state in (ConnectionState.FAILED, ConnectionState.CLOSED):
            raise self._terminal_error()
        future: asyncio.Future[list[dict[str, Any]]] = asyncio.get_running_loop().create_future()
        message = dict(message)
        message["msgSerial"] = self._msg_serial
        self._pending[self._msg_serial] = (message, future)
        self._msg_serial += 1
        if self.state == ConnectionState.CONNECTED and self.ws is not None:
            self._spawn(self._send_quietly(message))
        return future

    def _spawn(self, coro: Any) -> None:
        # Keep a reference until done so the task is not garbage-collected mid-flight.
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def ping(self, timeout: float = REQUEST_TIMEOUT) -> float:  # noqa: ASYNC109
        """Send a HEARTBEAT with an id and wait for its echo; returns the round trip (s)."""
        ping_id = f"ping-{time.monotonic_ns()}"
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pings[ping_id] = future
        start = time.monotonic()
        try:
            await self._send_frame({"action": Action.HEARTBEAT, "id": ping_id})
            async with asyncio.timeout(timeout):
                await future
        finally:
            self._pings.pop(ping_id, None)
        return time.monotonic() - start

    async def reauthorize(self) -> None:
        """Get a new token now and hand it to the relay in-band (AUTH) without reconnecting."""
        token = await self.auth.authorize(force=True)
        if token and self.state == ConnectionState.CONNECTED:
            await self._send_frame({"action": Action.AUTH, "auth": {"accessToken": token}})
        self._schedule_renewal()

    @property
    def max_idle(self) -> float:
        """Seconds of silence after which the connection is presumed dead."""
        interval = self.details.get("maxIdleInterval") or 15000
        return interval / 1000 + REQUEST_TIMEOUT

    # The connection loop

    async def _run(self) -> None:
        delay = 0.0
        renew = False
        while not self._closing:
            if delay:
                try:
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                except TimeoutError:
                    pass
                self._wake.clear()
            self._set_state(ConnectionState.CONNECTING)
            try:
                if self.auth.uses_token and (renew or self.auth.token is None):
                    await self.auth.authorize(force=renew)
                renew = False
                await self._open_and_serve()
                delay = 0.0
            except _Fatal as fatal:
                self._fail(fatal.error)
                return
            except _Reconnect as again:
                self.error = again.error
                renew = again.renew
                delay = 0.0 if self.state == ConnectionState.CONNECTED or renew else 1.0
            except AblyError as error:
                # authorize() failures: 40171 (no way to renew) is final, others are retried.
                if error.code in (40171, 40102) or 40100 <= error.code < 40140:
                    self._fail(error)
                    return
                self.error, delay = error, min(max(delay * 2, 0.5), self.disconnected_retry)
            except (OSError, TimeoutError, websockets.WebSocketException) as exc:
                was_connected = self.state == ConnectionState.CONNECTED
                self.error = AblyError(80003, 400, f"Connection dropped: {exc!r}")
                delay = 0.0 if was_connected else min(max(delay * 2, 0.5), self.disconnected_retry)
            if self._closing:
                return
            if self.ws is not None:
                with contextlib.suppress(Exception):
                    await self.ws.close()
                self.ws = None
            now = time.monotonic()
            self._disconnected_since = self._disconnected_since or now
            ttl = (self.details.get("connectionStateTtl") or 120000) / 1000
            if self.key and now - self._disconnected_since > ttl:
                self._set_state(ConnectionState.SUSPENDED, self.error)
            else:
                self._set_state(ConnectionState.DISCONNECTED, self.error)

    async def _open_and_serve(self) -> None:
        query: dict[str, str] = {
            **self.auth.ws_params(),
            "format": self.format,
            "v": "6",
            "heartbeats": "true",
            "agent": "channel-relay-client/0.1",
        }
        if self.client_id and self.client_id != "*":
            query["clientId"] = self.client_id
        if not self.echo:
            query["echo"] = "false"
        if self.key:
            query["resume"] = self.key
        query.update(self.params)
        uri = f"{self.url}/?{urlencode(query)}"
        ws = await connect(
            uri, open_timeout=REQUEST_TIMEOUT, ping_interval=None, max_size=None, compression=None
        )
        self.ws = ws
        async with asyncio.timeout(REQUEST_TIMEOUT):
            first = decode_frame(await ws.recv())
        await self._handle_handshake(first)
        while True:
            try:
                async with asyncio.timeout(self.max_idle):
                    frame = await ws.recv()
            except TimeoutError:
                raise _Reconnect(
                    AblyError(80003, 408, f"No activity seen from the relay in {self.max_idle}s")
                ) from None
            except websockets.ConnectionClosed as exc:
                raise _Reconnect(AblyError(80003, 400, f"Connection closed: {exc}")) from None
            try:
                message = decode_frame(frame)
            except AblyError:
                log.warning("undecodable frame dropped")
                continue
            await self._handle(message)

    async def _handle_handshake(self, message: dict[str, Any]) -> None:
        action = message.get("action")
        if action == Action.CONNECTED:
            self._on_connected(message)
            return
        self._raise_for(message)
        raise _Reconnect(AblyError(80003, 400, f"Unexpected first message: action {action}"))

    def _raise_for(self, message: dict[str, Any]) -> None:
        """DISCONNECTED / ERROR (connection-wide): reconnect, renew, or fail for good."""
        action = message.get("action")
        error = error_from_info(message.get("error") or {"code": 80003, "statusCode": 400})
        if is_token_error(error):
            if self.auth.renewable:
                raise _Reconnect(error, renew=True)
            raise _Fatal(error)
        if action == Action.ERROR:
            raise _Fatal(error)
        if action in (Action.DISCONNECTED, Action.CLOSED):
            raise _Reconnect(error)

    def _on_connected(self, message: dict[str, Any]) -> None:
        connection_id = message.get("connectionId")
        details = message.get("connectionDetails") or {}
        error = error_from_info(message["error"]) if message.get("error") else None
        previous = self.id
        resumed = previous is not None and previous == connection_id and error is None
        if details.get("clientId"):
            self.client_id = details["clientId"]
        self.id, self.details = connection_id, details
        self.key = details.get("connectionKey")
        if previous is not None and not resumed:
            # A new connection: the relay numbers our msgSerials from 0 again, and anything
            # sent on the old one might be lost (channels re-attach from their serials).
            self._renumber_pending()
            lost = ContinuityLostError(
                error.code if error else 80008,
                error.status if error else 400,
                f"Connection not resumed: {error.message if error else 'new connection id'}",
            )
            self.emit("continuity_lost", lost)
        self.error = error
        self._disconnected_since = None
        self._set_state(ConnectionState.CONNECTED, error)
        self._schedule_renewal()
        for _, (pending, _future) in sorted(self._pending.items()):
            self._spawn(self._send_quietly(pending))
        self.emit("connected", resumed, error)

    async def _handle(self, message: dict[str, Any]) -> None:
        action = message.get("action")
        if action == Action.HEARTBEAT:
            ping_id = message.get("id")
            if ping_id and ping_id in self._pings:
                future = self._pings.pop(ping_id)
                if not future.done():
                    future.set_result(None)
            elif ping_id:
                await self._send_frame({"action": Action.HEARTBEAT, "id": ping_id})
        elif action == Action.ACK:
            self._settle(message, None)
        elif action == Action.NACK:
            self._settle(message, error_from_info(message.get("error")))
        elif action == Action.CONNECTED:
            # In-band re-authentication answered: same connection, new details.
            self.details = message.get("connectionDetails") or self.details
        elif action == Action.AUTH:
            self._spawn(self.reauthorize())
        elif action in (Action.DISCONNECTED, Action.CLOSED) or (
            action == Action.ERROR and not message.get("channel")
        ):
            self._raise_for(message)
        else:
            self.emit("message", message)

    # ACKs and sending

    def _settle(self, message: dict[str, Any], error: AblyError | None) -> None:
        first = message.get("msgSerial") or 0
        count = message.get("count") or 1
        res = message.get("res") or []
        for i in range(count):
            entry = self._pending.pop(first + i, None)
            if entry is None:
                continue
            future = entry[1]
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result([res[i]] if i < len(res) and res[i] else [])

    def _renumber_pending(self) -> None:
        pending = [entry for _, entry in sorted(self._pending.items())]
        self._pending.clear()
        self._msg_serial = 0
        for message, future in pending:
            message["msgSerial"] = self._msg_serial
            self._pending[self._msg_serial] = (message, future)
            self._msg_serial += 1

    async def _send_quietly(self, message: dict[str, Any]) -> None:
        # A failed write is not an error for the caller: the message stays pending and is
        # resent after the reconnect.
        with contextlib.suppress(websockets.ConnectionClosed, OSError):
            await self._send_frame(message)

    async def _send_frame(self, message: dict[str, Any]) -> None:
        ws = self.ws
        if ws is None:
            raise websockets.ConnectionClosedError(None, None)
        frame = encode_frame(message, self.format)
        async with self._send_lock:
            await ws.send(frame)

    # Token renewal

    def _schedule_renewal(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            self._renewer = None
        expires = self.auth.expires
        if expires is None or not self.auth.renewable:
            return
        # Renew a little before expiry: 30 s, or a fifth of a short token's remaining life.
        remaining = expires - time.time()
        lead = min(30.0, max(remaining / 5, 0.5))
        self._renewer = asyncio.create_task(self._renew_after(max(remaining - lead, 0.0)))

    async def _renew_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._renewer = None
        try:
            await self.reauthorize()
        except Exception as exc:  # the relay's 40142 DISCONNECTED will make us retry
            log.warning("token renewal failed: %r", exc)

    # State

    def _set_state(self, state: ConnectionState, error: AblyError | None = None) -> None:
        if state == self.state:
            return
        self.state = state
        self._state_changed.set()
        self.emit("state", state, error)

    def _fail(self, error: AblyError) -> None:
        self.error = error
        self.id = self.key = None
        self._set_state(ConnectionState.FAILED, error)
        self._fail_pending(ConnectionFailedError(error.code, error.status, error.message))

    def _fail_pending(self, error: AblyError) -> None:
        for _, future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()

    def _terminal_error(self) -> AblyError:
        error = self.error
        if self.state == ConnectionState.FAILED and error is not None:
            return ConnectionFailedError(error.code, error.status, error.message)
        return ConnectionFailedError(80017, 400, f"Connection {self.state}")

    def on_state(self, callback: Callable[[ConnectionState, AblyError | None], Any]):
        """Shorthand for on("state", callback)."""
        return self.on("state", callback)
