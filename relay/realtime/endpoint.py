"""The WebSocket endpoint: the connect handshake (with resume), live connections, heartbeats."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from aiohttp import WSCloseCode, web

from channel_relay.auth.authenticator import Authenticator, now_ms
from channel_relay.auth.identity import Identity
from channel_relay.channels.registry import ChannelRegistry
from channel_relay.config import Settings
from channel_relay.protocol.actions import Action
from channel_relay.protocol.codec import Format, encode_frame
from channel_relay.protocol.errors import AblyError
from channel_relay.realtime.connection import CONNECTION_KEY, Connection
from channel_relay.realtime.frames import FrameWriter, ws_frame
from channel_relay.realtime.outbound import OutboundBudget
from channel_relay.store.outage import OutageLog
from channel_relay.tasks import cancel_and_wait

__all__ = ["RealtimeEndpoint"]

log = logging.getLogger(__name__)
# A time after every revocation has come into force: whether one revokes a token at all.
_NEVER = 2**63
_outage = OutageLog(log, "recording connection state in the store")


class RealtimeEndpoint:
    def __init__(
        self, settings: Settings, channels: ChannelRegistry, authenticator: Authenticator
    ) -> None:
        self.settings = settings
        self.channels = channels
        self.authenticator = authenticator
        # Every connection with a socket, and those without one still inside connectionStateTtl.
        self.connections: dict[str, Connection] = {}
        # WebSockets being served now (settings.max_connections counts these).
        self.open_sockets = 0
        # Told of each socket of an app opening (+1) and closing (-1): live stats.
        self.on_socket: Callable[[str, int], None] | None = None
        self.outbound = OutboundBudget(settings.max_outbound_total)
        self._ticker: asyncio.Task[None] | None = None
        # Fires when the next revocation made with allowReauthMargin comes into force.
        self._revocation_due: asyncio.TimerHandle | None = None
        # This process among the nodes writing to the store (connections record their node).
        self.node_id = secrets.token_hex(8)
        self._recording: set[asyncio.Task[None]] = set()
        self._stopping = False

    def connection_id_for_key(self, app_id: str, connection_key: str) -> str | None:
        """The id of the live connection of `app_id` whose key is `connection_key`: whom a
        REST publish with that connectionKey speaks for."""
        connection = self.connections.get(connection_key.rpartition("!")[2])
        if connection is None or connection.identity.app_id != app_id:
            return None
        return connection.connection_id if connection.key_matches(connection_key) else None

    async def start(self) -> None:
        await self._node_alive()
        self._ticker = asyncio.create_task(self._tick(), name="relay-heartbeats")

    async def _node_alive(self) -> None:
        await self.channels.store.node_alive(
            self.node_id, now_ms(), self.settings.connection_state_ttl
        )

    async def _leave_orphans(self) -> None:
        """Members whose node has been silent for a lease (maxIdleInterval: three missed
        heartbeats) plus the presence grace period leave, announced by this node."""
        silent = self.settings.max_idle_interval + self.settings.presence_grace
        orphans = await self.channels.store.claim_orphans(self.node_id, now_ms() - silent)
        by_channel: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for app_id, name, member in orphans:
            by_channel.setdefault((app_id, name), []).append(member)
        for (app_id, name), members in by_channel.items():
            channel = await self.channels.get(app_id, name)
            channel.presence.leave_members(members)

    async def stop(self, flush: Callable[[], Awaitable[None]] | None = None) -> None:
        """Tell every client to reconnect (they resume against whichever relay answers next).

        With `flush` (the store's), frames stop being acted on first, then everything already
        accepted is made durable and ACKed, and only then is DISCONNECTED sent: no publish is
        both stored and left unacknowledged (the SDK would publish it again).
        """
        self._stopping = True
        await cancel_and_wait(self._ticker)
        if self._revocation_due is not None:
            self._revocation_due.cancel()
        live = [c for c in self.connections.values() if c.ws is not None]
        for connection in self.connections.values():
            connection.draining = True
            connection.cancel_timers()
        if flush is not None:
            await flush()
        going_away = AblyError(80003, 503, "Relay shutting down; reconnect")
        await asyncio.gather(*(c.disconnect(going_away) for c in live), return_exceptions=True)
        self.connections.clear()
        # Records begun before the stop finish before the store closes under them.
        await asyncio.gather(*self._recording, return_exceptions=True)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Upgrade, authenticate from the query string, send CONNECTED, then serve frames.

        Refusals are sent as a protocol ERROR after the upgrade: an SDK whose upgrade is refused
        at the HTTP level cannot see why and would retry for ever.
        """
        query = request.query
        fmt: Format = "msgpack" if query.get("format") == "msgpack" else "json"
        ws = _Socket(fmt, self.settings.max_frame_size)
        await ws.prepare(request)
        transport = request.transport
        assert transport is not None
        metrics = self.channels.metrics
        limit = self.settings.max_connections
        try:
            if limit and self.open_sockets >= limit:
                if metrics is not None:
                    metrics.refused_connections.labels("40150").inc()
                raise AblyError(
                    40150, 429, f"Connection limit of this relay ({limit}) reached; retry later"
                )
            identity = self.authenticator.connect_params(query)
        except AblyError as error:
            if metrics is not None and error.code != 40150:
                metrics.auth_failures.labels(str(error.code)).inc()
            log.info(
                "connection refused: %s (%d)", error.message, error.code, extra={"code": error.code}
            )
            await _last_word(ws, transport, {"action": Action.ERROR, "error": error.to_dict()}, fmt)
            return ws
        self.open_sockets += 1
        if self.on_socket is not None:
            self.on_socket(identity.app_id, 1)
        try:
            connection, error = await self._resume_or_new(query, identity)
            connection.attach_socket(
                ws,
                transport,
                fmt,
                echo=query.get("echo", "true") != "false",
                remain_present_for=_remain_present_for(query),
            )
            cid = connection.connection_id
            self.connections[cid] = connection
            store = self.channels.store
            self._record(
                store.save_connection(
                    cid, identity.app_id, _key_hash(connection.connection_key), self.node_id
                )
            )
            connection.send(connection.connected_message(error))
            _log_connected(connection, query, error)
            await connection.serve()
            log.info(
                "disconnected: %s",
                connection.end_reason or f"the client closed the socket (code {ws.close_code})",
                extra=_context(connection),
            )
            if connection.closed:
                if self.connections.get(cid) is connection:
                    del self.connections[cid]
                self._record(store.forget_connections(self.node_id, [cid]))
            elif connection.ws is ws:
                self._record(store.drop_connections(self.node_id, [cid], now_ms()))
        except Exception:
            # Past the upgrade nothing may reach aiohttp, whose error path would write an HTTP
            # 500 into the WebSocket: the relay's own failure is a DISCONNECTED, and the SDK
            # reconnects.
            log.exception("serving a connection failed", extra={"app_id": identity.app_id})
            error = AblyError(50002, 500, "Internal connection error")
            frame = {"action": Action.DISCONNECTED, "error": error.to_dict()}
            await _last_word(ws, transport, frame, fmt)
        finally:
            self.open_sockets -= 1
            if self.on_socket is not None:
                self.on_socket(identity.app_id, -1)
        return ws

    async def _resume_or_new(
        self, query: Mapping[str, str], identity: Identity
    ) -> tuple[Connection, AblyError | None]:
        """The connection a `resume`/`recover` key names, or a new one with the reason it is new.

        The connection is resumed from this node's memory, or else from the store, where every
        node records its connections: one whose node died or restarted resumes here with its
        connectionId, within connectionStateTtl. A key that is not of our shape
        (CONNECTION_KEY), or that does not match, is 80018; one whose state has expired or is
        unknown is 80008. Then the SDK resets msgSerial and re-attaches its channels with their
        channelSerials, which the durable log honours.
        """
        key = query.get("resume") or query.get("recover")
        error: AblyError | None = None
        replaced: str | None = None
        resumed: Connection | None = None
        if key:
            shape = CONNECTION_KEY.fullmatch(key)
            connection_id = shape.group(1) if shape else ""
            existing = self.connections.get(connection_id) if shape else None
            if shape is None:
                outcome, error = "invalid", AblyError(80018, 400, "Invalid connection key")
            elif (
                existing is not None
                and not existing.closed
                and existing.key_matches(key)
                and existing.identity.app_id == identity.app_id
            ):
                outcome, resumed = "resumed", existing
            else:
                claimed = await self.channels.store.claim_connection(
                    connection_id,
                    identity.app_id,
                    _key_hash(key),
                    self.node_id,
                    now_ms(),
                    self.settings.connection_state_ttl,
                )
                if claimed:
                    outcome = "resumed"
                    resumed = self._restored(connection_id, identity)
                elif claimed is False:
                    outcome, error = "invalid", AblyError(80018, 400, "Invalid connection key")
                else:
                    outcome = "expired"
                    error = AblyError(80008, 400, "Unable to resume: connection state expired")
                    replaced = connection_id
            if self.channels.metrics is not None:
                self.channels.metrics.resumes.labels(outcome).inc()
            if resumed is not None:
                resumed.set_identity(identity)
                return resumed, None
        connection = Connection(
            identity, self.settings, self.channels, self.authenticator, self.outbound
        )
        connection.replaces = replaced
        return connection, error

    def _restored(self, connection_id: str, identity: Identity) -> Connection:
        """A connection taken over from the store (the claim made its presence members this
        node's). Its ACK replies died with its node: the publishes it resends are recognised by
        their ids in the store. A stale copy in this node's memory is dropped."""
        stale = self.connections.pop(connection_id, None)
        if stale is not None:
            stale.closed = True
            stale.cancel_timers()
        connection = Connection(
            identity,
            self.settings,
            self.channels,
            self.authenticator,
            self.outbound,
            connection_id=connection_id,
        )
        return connection

    def _record(self, write: Coroutine[Any, Any, None]) -> None:
        """Record connection state in the store without holding up the connection: if it is
        lost (the node dies first), that connection's resume elsewhere gives 80008. Nothing is
        recorded once the relay is stopping (the store closes; state ages from the node's last
        heartbeat)."""
        if self._stopping:
            write.close()
            return
        task = asyncio.get_running_loop().create_task(_logged(write))
        self._recording.add(task)
        task.add_done_callback(self._recording.discard)

    def enforce_revocations(self) -> None:
        """Revocations were committed: connections whose token they revoke now are dropped
        (40141); those whose token one revokes later (allowReauthMargin) get an AUTH, Ably's
        hint to renew the token in band before then (ably-js authorizes at once)."""
        self._enforce(hint=True)

    def _enforce(self, *, hint: bool = False) -> None:
        revocations = self.authenticator.revocations
        now = now_ms()
        for connection in list(self.connections.values()):
            identity = connection.identity
            if connection.ws is None or identity.method != "token":
                continue
            if revocations.is_revoked(identity, now):
                asyncio.get_running_loop().create_task(
                    connection.disconnect(AblyError(40141, 401, "Token revoked"))
                )
            elif hint and revocations.is_revoked(identity, _NEVER):
                connection.send({"action": Action.AUTH})
        if self._revocation_due is not None:
            self._revocation_due.cancel()
            self._revocation_due = None
        due = revocations.next_in_force(now)
        if due is not None and not self._stopping:
            # Dropped when it comes into force, not at the next heartbeat tick.
            self._revocation_due = asyncio.get_running_loop().call_later(
                (due - now) / 1000, self._enforce
            )

    async def _tick(self) -> None:
        """Heartbeats and expiry: a HEARTBEAT to each connection that was sent nothing since the
        last tick (so SDKs see activity within maxIdleInterval), and connections without a socket
        for longer than connectionStateTtl are forgotten."""
        interval = self.settings.max_idle_interval / 3000
        ttl = self.settings.connection_state_ttl / 1000
        heartbeat = {"action": Action.HEARTBEAT}
        seen: dict[str, int] = {}
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            current: dict[str, int] = {}
            expired: list[str] = []
            for cid, connection in list(self.connections.items()):
                if connection.dropped_at is not None:
                    if now - connection.dropped_at > ttl:
                        del self.connections[cid]
                        expired.append(cid)
                    continue
                if seen.get(cid) == connection.frames_sent:
                    connection.send(heartbeat)
                current[cid] = connection.frames_sent
            seen = current
            if expired:
                self._record(self.channels.store.forget_connections(self.node_id, expired))
            self._record(self._node_alive())
            self._record(self._leave_orphans())


def _context(connection: Connection) -> dict[str, Any]:
    return {"connection_id": connection.connection_id, "app_id": connection.identity.app_id}


def _log_connected(
    connection: Connection, query: Mapping[str, str], error: AblyError | None
) -> None:
    if query.get("resume") or query.get("recover"):
        how = "resumed" if error is None else f"new, resume refused ({error.code})"
    else:
        how = "new"
    log.info(
        "connected (%s, %s, clientId %s, %s)",
        how,
        connection.identity.method,
        connection.identity.client_id,
        connection.format,
        extra=_context(connection),
    )


def _key_hash(key: str) -> str:
    """What the store keeps of a connection key: enough to check one, not to use it."""
    return hashlib.sha256(key.encode()).hexdigest()


async def _logged(write: Awaitable[None]) -> None:
    try:
        await write
    except Exception as exc:
        _outage.failed(exc)
    else:
        _outage.succeeded()


async def _last_word(
    ws: web.WebSocketResponse, transport: asyncio.Transport, frame: dict[str, Any], fmt: Format
) -> None:
    """Send `frame` on a socket that serves no connection, then close it."""
    FrameWriter(ws, transport).write(ws_frame(encode_frame(frame, fmt)))
    await ws.close()


class _Socket(web.WebSocketResponse):
    """aiohttp's WebSocket, refusing frames over maxFrameSize as Ably does: aiohttp stops
    reading such a frame at its header (nothing of it is buffered) and closes with 1009; the
    client is first sent ERROR 40009, so an SDK learns why its connection failed."""

    def __init__(self, fmt: Format, max_frame_size: int) -> None:
        super().__init__(autoping=True, compress=False, max_msg_size=max_frame_size + 1)
        # The ERROR is built only for a socket that needs it: most never do, and an idle
        # socket's memory counts thousands of times over.
        self._fmt: Format = fmt
        self._max_frame_size = max_frame_size

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True
    ) -> bool:
        if code == WSCloseCode.MESSAGE_TOO_BIG and not self.closed:
            limit = self._max_frame_size
            error = AblyError.too_large(f"Protocol message exceeds maxFrameSize ({limit})")
            too_big = encode_frame({"action": Action.ERROR, "error": error.to_dict()}, self._fmt)
            if isinstance(too_big, str):
                await self.send_str(too_big)
            else:
                await self.send_bytes(too_big)
        return await super().close(code=code, message=message, drain=drain)


def _remain_present_for(query: Mapping[str, str]) -> int | None:
    """The `remainPresentFor` connect param (ms, a transport param of Ably's SDKs), if valid."""
    value = query.get("remainPresentFor", "")
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 9 else None
