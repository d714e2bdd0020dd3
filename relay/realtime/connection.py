"""One realtime connection: the ProtocolMessage exchange with one Ably SDK.

A Connection outlives its WebSocket: when the socket drops without a CLOSE, the connection keeps
its id, identity and remembered replies for connectionStateTtl, and a client that comes back
with `resume=<connectionKey>` gets it back on a new socket (same connectionId, new key). Channel
continuity does not depend on this: a re-ATTACH with a channelSerial replays from the durable log.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from channel_relay.auth.authenticator import Authenticator, now_ms, stamp_client_ids
from channel_relay.auth.credentials import message_client_id
from channel_relay.auth.identity import Identity
from channel_relay.auth.permissions import may_change_some
from channel_relay.channels.channel import Channel, SubscriberView
from channel_relay.channels.deltas import DeltaChain
from channel_relay.channels.filters import MessageFilter
from channel_relay.channels.outgoing import Outgoing, Subscriber
from channel_relay.channels.qualified import QualifiedSubscriber
from channel_relay.channels.registry import ChannelRegistry
from channel_relay.channels.replay import Replay, resume_from, rewind_from
from channel_relay.config import Settings
from channel_relay.protocol.actions import MODE_FLAGS, Action, Flag, PresenceAction
from channel_relay.protocol.attach import attach_params, requested_modes, rewind_param
from channel_relay.protocol.codec import Format, decode_frame, encode_frame
from channel_relay.protocol.errors import AblyError
from channel_relay.protocol.qualifiers import base_channel, parse_qualified
from channel_relay.protocol.serials import format_serial
from channel_relay.protocol.validation import (
    MUTATIONS,
    check_plain,
    is_int,
    parse_annotations,
    parse_messages,
    parse_mutation,
    parse_presence,
    valid_text,
)
from channel_relay.realtime.acks import AckQueue
from channel_relay.realtime.frames import FrameWriter, ws_frame
from channel_relay.realtime.outbound import OutboundBudget

__all__ = ["CONNECTION_KEY", "Connection"]

log = logging.getLogger(__name__)

# The shape of the connection keys this relay hands out, "<16 random>!<connectionId>"; a
# `resume`/`recover` key of another shape is refused as malformed (80018), whatever it names.
CONNECTION_KEY = re.compile(r"[A-Za-z0-9_-]{16}!([A-Za-z0-9]{11})")
# Seconds a shed slow consumer's socket has to take its DISCONNECTED and CLOSE before it is
# dropped (sooner if the relay-wide outbound budget needs the room).
_SHED_GRACE = 5.0
# ATTACHes of one connection acted on at once (Connection._attach_soon).
_MAX_ATTACHING = 256
# Enum members the per-frame path compares with, looked up once: reading a member off its enum
# class costs ~0.4 us on Python 3.11 (a module global ~0.05), and a publish read half a dozen.
_DATA_FRAMES = (WSMsgType.TEXT, WSMsgType.BINARY)
_ATTACH = Action.ATTACH
_MESSAGE = Action.MESSAGE
_PUBLISH = Flag.PUBLISH


@dataclass(slots=True)
class Attachment:
    channel: Channel
    # The modes granted, and those the ATTACH asked for: a reauth grants from the request again.
    modes: Flag
    requested: Flag
    # What the channel delivers to: this connection, or a QualifiedSubscriber standing for it
    # when the name attached carries a qualifier ([?params], [filter=...], [meta]).
    subscriber: Subscriber
    name: str
    # Live deliveries held back while the log is replayed, so the replay and the live stream
    # meet without a gap or a duplicate. None once live.
    backlog: list[Outgoing] | None = None
    replaying: asyncio.Task[None] | None = field(default=None, repr=False)


class Connection:
    """Reads frames, acts on them in arrival order, and writes replies and deliveries.

    Publishes are pipelined: a MESSAGE is numbered and queued for commit, and the read loop
    moves on; its ACK is written when the store reports it durable, in msgSerial order.
    Everything written goes to the socket's FrameWriter as a pre-built frame.
    """

    # Thousands of connections sit idle: slots, and the ACK queue and the set of lost
    # presence made on first use, keep each one's own memory small.
    __slots__ = (
        "_acks",
        "_attaching",
        "_closing",
        "_expiry",
        "_presence_grace",
        "_rate_count",
        "_rate_second",
        "_shedding",
        "_views",
        "attachments",
        "authenticator",
        "channels",
        "closed",
        "connection_id",
        "connection_key",
        "draining",
        "dropped_at",
        "echo",
        "end_reason",
        "format",
        "frames_sent",
        "identity",
        "lost_presence",
        "outbound",
        "presence_channels",
        "presence_grace_ms",
        "replaces",
        "settings",
        "writer",
        "ws",
    )

    def __init__(
        self,
        identity: Identity,
        settings: Settings,
        channels: ChannelRegistry,
        authenticator: Authenticator,
        outbound: OutboundBudget,
        connection_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.outbound = outbound
        self.channels = channels
        self.authenticator = authenticator
        self._expiry: asyncio.TimerHandle | None = None
        self.identity = identity
        self.set_identity(identity)
        # A connection resumed from the store (its node died, or the relay restarted) keeps
        # its connectionId.
        self.connection_id = connection_id or secrets.token_urlsafe(8).replace("-", "x").replace(
            "_", "y"
        )
        self.connection_key = ""
        self.ws: web.WebSocketResponse | None = None
        self.writer: FrameWriter | None = None
        # Set once the current socket was shed as too slow: nothing more is written to it.
        self._shedding = False
        self._closing: asyncio.Task[bool] | None = None
        self.format: Format = "json"
        self.echo = True
        self.attachments: dict[str, Attachment] = {}
        self._acks: AckQueue | None = None
        self.frames_sent = 0
        # monotonic time the socket went away; None while one is attached
        self.dropped_at: float | None = None
        self.closed = False
        # Why the relay ended the current socket (logged when it goes); None: the client did.
        self.end_reason: str | None = None
        # Channels where this connection may have presence members, and the timer that makes
        # them leave once the socket has been gone for the grace period.
        self.presence_channels: dict[str, Channel] = {}
        self._presence_grace: asyncio.TimerHandle | None = None
        self.presence_grace_ms = settings.presence_grace
        # Channels whose members of this connection the relay removed without being asked (or
        # that a replaced connection had): the next attach there is not RESUMED, so the SDK
        # re-enters them. `replaces` is the connectionId of a connection that failed to resume.
        self.lost_presence: set[str] | None = None
        self.replaces: str | None = None
        # Per channel, what this connection's subscription had received when its socket
        # dropped: a RESUMED re-attach carries on with it (appends stay fragments).
        self._views: dict[str, SubscriberView] = {}
        # Set when the relay shuts down: frames that arrive from then on are not acted on (the
        # SDK sends them again after it reconnects), so no ACK can be lost with the socket; and
        # no presence grace starts, since the store closes with the relay.
        self.draining = False
        # Inbound rate (settings.max_inbound_rate): messages counted in the current second.
        self._rate_second = 0
        # ATTACHes of the current socket being acted on, by channel name (_attach_soon); each
        # socket has its own, so an old socket ending cancels none of a newer one's.
        self._attaching: dict[str, asyncio.Task[None]] = {}
        self._rate_count = 0

    @property
    def acks(self) -> AckQueue:
        """The ACK/NACK replies of this connection's publishes (made at the first)."""
        acks = self._acks
        if acks is None:
            metrics = self.channels.metrics
            observe = None if metrics is None else metrics.ack_latency.observe
            acks = self._acks = AckQueue(self.send, observe, self._log_refused)
        return acks

    def attach_socket(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport,
        fmt: Format,
        echo: bool,
        remain_present_for: int | None = None,
    ) -> None:
        """Serve this connection over a (new) socket, replacing any previous one.

        `remain_present_for` (ms, the `remainPresentFor` connect param) is how long this
        connection's members stay after the socket drops: settings.presence_grace if not given,
        never longer than connectionStateTtl."""
        if self.writer is not None:
            self.writer.abort()
            self.outbound.forget(self)
        self._detach_all()
        if self._presence_grace is not None:
            self._presence_grace.cancel()
            self._presence_grace = None
        self.ws, self.format, self.echo = ws, fmt, echo
        self.writer = FrameWriter(ws, transport, self._queued, self.settings.max_outbound_buffer)
        self._attaching = {}
        self._shedding = False
        self.connection_key = f"{secrets.token_urlsafe(12)}!{self.connection_id}"
        self.dropped_at = None
        self.end_reason = None
        grace = self.settings.presence_grace if remain_present_for is None else remain_present_for
        self.presence_grace_ms = min(grace, self.settings.connection_state_ttl)

    def set_identity(self, identity: Identity) -> None:
        """Act with `identity` from now on; when its token expires, the socket is dropped with
        DISCONNECTED 40142, and the SDK renews its token and resumes."""
        self.identity = identity
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if identity.expires is not None:
            loop = asyncio.get_running_loop()
            delay = (identity.expires - now_ms()) / 1000
            self._expiry = loop.call_at(loop.time() + max(delay, 0), self._token_expired)

    def _token_expired(self) -> None:
        self._expiry = None
        if self.ws is not None and not self.closed:
            asyncio.get_running_loop().create_task(
                self.disconnect(AblyError(40142, 401, "Token expired"))
            )

    def key_matches(self, key: str) -> bool:
        return secrets.compare_digest(key.encode(), self.connection_key.encode())

    # Writing

    def send(self, message: dict[str, Any]) -> None:
        frame = self._encode(message)
        if frame is not None:
            self._write(frame)

    def deliver(self, outgoing: Outgoing) -> None:
        attachment = self.attachments.get(outgoing.message["channel"])
        if attachment is not None and attachment.backlog is not None:
            attachment.backlog.append(outgoing)
            return
        frame = outgoing.frames.get(self.format)
        if frame is None:
            # Cached even when empty: a delivery that cannot be encoded is logged once, not
            # once per subscriber.
            frame = outgoing.frames[self.format] = self._encode(outgoing.message) or b""
        # _write spelt out: this runs once per subscriber per delivery.
        writer = self.writer
        if frame and writer is not None and not self._shedding and writer.write(frame):
            self.frames_sent += 1

    def _encode(self, message: dict[str, Any]) -> bytes | None:
        """The frame for `message`, or None (logged) if this format cannot carry it. Validation
        keeps such values out; this keeps a miss from escaping into a channel's fan-out."""
        try:
            return ws_frame(encode_frame(message, self.format))
        except (TypeError, ValueError, OverflowError):
            self._log_failure("encoding a frame", message.get("channel"))
            return None

    def _write(self, frame: bytes) -> None:
        writer = self.writer
        if writer is not None and not self._shedding and writer.write(frame):
            self.frames_sent += 1

    def _queued(self, size: int) -> None:
        """The socket holds `size` bytes after a write (FrameWriter): the outbound bounds."""
        if self._shedding:
            # Its last frame (DISCONNECTED) is being written, maybe while the budget sheds
            # others: the budget holds what it noted until it drops the socket.
            return
        if size > self.settings.max_outbound_buffer:
            self.shed()
        self.outbound.note(self, size)

    def buffered(self) -> int:
        return 0 if self.writer is None else self.writer.buffered()

    def shed(self) -> None:
        """Too slow to keep up. A subscriber that cannot must not hold the channel back or grow
        memory without bound: DISCONNECTED 42915 is its last frame, the socket closes, and the
        SDK resumes at once and catches up from the log."""
        writer = self.writer
        if writer is None or self._shedding:
            return
        self._shedding = True
        self.end_reason = "slow consumer: its unsent output passed the outbound bounds"
        log.warning(
            "disconnecting slow consumer %s",
            self.connection_id,
            extra={"connection_id": self.connection_id, "code": 42915},
        )
        if self.channels.metrics is not None:
            self.channels.metrics.slow_consumers.inc()
        self.outbound.shedding(self)
        self._detach_all()
        error = AblyError(
            42915, 429, "Connection too slow to take its messages; reconnect and resume"
        )
        frame = self._encode({"action": Action.DISCONNECTED, "error": error.to_dict()})
        if frame is not None:
            writer.write(frame)
        loop = asyncio.get_running_loop()
        if self.ws is not None:
            self._closing = loop.create_task(self.ws.close(drain=False))
        loop.call_later(_SHED_GRACE, writer.abort)

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()

    def connected_message(self, error: AblyError | None = None) -> dict[str, Any]:
        s = self.settings
        details: dict[str, Any] = {
            "connectionKey": self.connection_key,
            "maxMessageSize": s.max_message_size,
            "maxFrameSize": s.max_frame_size,
            "maxInboundRate": s.max_inbound_rate or 1000,
            "connectionStateTtl": s.connection_state_ttl,
            "maxIdleInterval": s.max_idle_interval,
            "serverId": "channel-relay",
        }
        if self.identity.client_id is not None:
            details["clientId"] = self.identity.client_id
        message: dict[str, Any] = {
            "action": Action.CONNECTED,
            "connectionId": self.connection_id,
            "connectionDetails": details,
        }
        if error is not None:
            message["error"] = error.to_dict()
        return message

    # Reading

    async def serve(self) -> None:
        """Handle the current socket's frames until it closes, then leave every channel."""
        ws = self.ws
        assert ws is not None
        attaching = self._attaching
        try:
            async for frame in ws:
                if frame.type not in _DATA_FRAMES:
                    if ws.close_code == WSCloseCode.MESSAGE_TOO_BIG:
                        # The socket sent ERROR 40009 (realtime.endpoint): the SDK has failed
                        # the connection and will not resume it.
                        self.end_reason = "ERROR 40009: a frame over maxFrameSize"
                        await self.close()
                    break
                if self.ws is not ws:
                    # Resumed on a newer socket: what is still queued from this one is stale
                    # (the SDK resends what matters there); handling it now would reorder
                    # publishes and attaches and answer on the new socket.
                    break
                if not await self._on_frame(frame.data, ws):
                    break
                acks = self._acks
                if acks is not None and acks.full():
                    # Too far behind on this connection's publishes: read no more until some
                    # are answered (realtime.acks).
                    await acks.room()
        finally:
            for task in attaching.values():
                task.cancel()
            if self.ws is ws:
                self._detach_all()
                self.writer = None
                self.outbound.forget(self)
                self.dropped_at = time.monotonic()
                if self.presence_channels and not self.closed and not self.draining:
                    self._presence_grace = asyncio.get_running_loop().call_later(
                        self.presence_grace_ms / 1000, self._presence_expired
                    )

    async def _on_frame(self, data: bytes | str, ws: web.WebSocketResponse) -> bool:
        """Act on one frame; False once the connection has ended.

        The one rule for failures: whatever goes wrong while handling a frame becomes an Ably
        error on its scope (a NACK for a publish or presence, inside their handlers; a channel
        ERROR for a frame naming a channel; otherwise a connection ERROR for a client's fault,
        DISCONNECTED for the relay's own), and nothing reaches aiohttp after the upgrade.
        """
        try:
            message = decode_frame(data)
        except AblyError as error:
            await self.fail(error)
            return False
        name = message.get("channel")
        if message.get("action") == _ATTACH and isinstance(name, str) and name:
            await self._attach_soon(name, message, ws)
            return True
        if self._attaching:
            await asyncio.wait(list(self._attaching.values()))
            if self.ws is not ws:
                # Resumed on a newer socket while this one's attaches finished: the frame is
                # stale (see serve).
                return False
        return await self._act(message)

    async def _attach_soon(
        self, name: str, message: dict[str, Any], ws: web.WebSocketResponse
    ) -> None:
        """Start acting on an ATTACH without waiting for it: attaches run side by side, so a
        client attaching thousands of channels waits for the store's lookups together, not one
        after the other. Attaches of one channel still run in order, any other frame waits for
        every attach before it, and at most _MAX_ATTACHING run at once."""
        attaching = self._attaching
        if len(attaching) >= _MAX_ATTACHING:
            await asyncio.wait(list(attaching.values()), return_when=asyncio.FIRST_COMPLETED)
            if self.ws is not ws:
                return
        previous = attaching.get(name)
        task = asyncio.create_task(self._attach_after(previous, message, self.writer))
        attaching[name] = task

        def done(finished: asyncio.Task[None]) -> None:
            if attaching.get(name) is finished:
                del attaching[name]

        task.add_done_callback(done)

    async def _attach_after(
        self,
        previous: asyncio.Task[None] | None,
        message: dict[str, Any],
        writer: FrameWriter | None,
    ) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        if self.writer is writer:
            # Otherwise the socket it came on is gone: the SDK attaches again on the new one.
            await self._act(message)

    async def _act(self, message: dict[str, Any]) -> bool:
        """Handle one decoded frame under the failure rule; False once the connection ended."""
        try:
            await self.handle(message)
        except _Fatal as fatal:
            await self.fail(fatal.error)
            return False
        except Exception as exc:
            channel = message.get("channel")
            if isinstance(channel, str) and channel:
                self._channel_error(channel, self._as_error(exc, channel, 50001))
                return True
            error = self._as_error(exc, None, 50002)
            if isinstance(exc, AblyError):
                await self.fail(error)
            else:
                await self.disconnect(error)
            return False
        return not self.closed

    def _as_error(self, exc: Exception, channel: str | None, code: int = 50000) -> AblyError:
        """The Ably error to answer `exc` with; an unexpected one is logged (once, here) with
        this connection and the channel."""
        if isinstance(exc, AblyError):
            return exc
        self._log_failure("handling a frame", channel)
        return AblyError(code, 500, "Internal error")

    def _log_failure(self, doing: str, channel: Any) -> None:
        name = channel if isinstance(channel, str) and valid_text(channel) else None
        log.exception(
            "%s failed on connection %s (channel %s)",
            doing,
            self.connection_id,
            name,
            extra={"connection_id": self.connection_id, "channel": name},
        )

    async def fail(self, error: AblyError) -> None:
        """A connection-level ERROR: the SDK moves the connection to FAILED; no resume."""
        self.end_reason = f"ERROR {error.code}: {error.message}"
        self.send({"action": Action.ERROR, "error": error.to_dict()})
        await self.close()

    def cancel_timers(self) -> None:
        """No token expiry or presence grace fires from now on: the connection is closed, or
        the relay is stopping (its store closes; clients re-enter on the next relay)."""
        for timer in (self._expiry, self._presence_grace):
            if timer is not None:
                timer.cancel()
        self._expiry = self._presence_grace = None

    def _presence_expired(self) -> None:
        self._presence_grace = None
        if self.lost_presence is None:
            self.lost_presence = set()
        self.lost_presence.update(self.presence_channels)
        self.leave_presence()

    def leave_presence(self) -> None:
        """Every member this connection has entered leaves, on every channel."""
        for channel in self.presence_channels.values():
            channel.presence.leave_connection(self.connection_id)
        self.presence_channels.clear()

    async def close(self) -> None:
        self.closed = True
        self.cancel_timers()
        self._detach_all()
        self._views.clear()
        self.leave_presence()
        if self.ws is not None:
            await self.ws.close()

    async def disconnect(self, error: AblyError) -> None:
        """Server-initiated DISCONNECTED: the SDK reconnects at once and resumes."""
        self.end_reason = f"DISCONNECTED {error.code}: {error.message}"
        self.send({"action": Action.DISCONNECTED, "error": error.to_dict()})
        self._detach_all()
        if self.ws is not None:
            await self.ws.close()

    async def handle(self, message: dict[str, Any]) -> None:
        if self.draining:
            return
        action = message.get("action")
        if action == _MESSAGE:
            await self._on_message(message)
        elif action == Action.ATTACH:
            await self._on_attach(message)
        elif action == Action.DETACH:
            self._on_detach(message)
        elif action == Action.PRESENCE:
            await self._on_presence(message)
        elif action == Action.ANNOTATION and self.channels.annotations is not None:
            await self._on_annotation(message)
        elif action == Action.AUTH:
            await self._on_auth(message)
        elif action == Action.SYNC:
            self._on_sync(message)
        elif action == Action.HEARTBEAT:
            reply: dict[str, Any] = {"action": Action.HEARTBEAT}
            ping_id = message.get("id")
            if isinstance(ping_id, str) and valid_text(ping_id):
                reply["id"] = ping_id
            self.send(reply)
        elif action == Action.CLOSE:
            self.end_reason = "closed by the client"
            self.send({"action": Action.CLOSED, "connectionId": self.connection_id})
            await self.close()
        elif action == Action.DISCONNECT:
            self._detach_all()
            if self.ws is not None:
                await self.ws.close()
        else:
            self._unsupported(message)

    async def _on_auth(self, message: dict[str, Any]) -> None:
        """In-band reauthentication: a new token on the same connection. The reply is a new
        CONNECTED (same connectionId); attached channels the new capability no longer grants
        fail with 40160 at once."""
        auth = message.get("auth")
        token = auth.get("accessToken") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token or not valid_text(token):
            raise _Fatal(AblyError.bad_request("AUTH without auth.accessToken"))
        own = self.identity.client_id
        try:
            identity = self.authenticator.token(token, None if own in (None, "*") else own)
            if identity.app_id != self.identity.app_id:
                raise AblyError(40102, 401, "Incompatible credentials: a different app")
        except AblyError as error:
            if 40140 <= error.code < 40150:
                await self.disconnect(error)
            else:
                await self.fail(error)
            return
        self.set_identity(identity)
        self.send(self.connected_message())
        for name, attachment in list(self.attachments.items()):
            try:
                modes = self._granted_modes(attachment.channel.name, attachment.requested)
            except AblyError as error:
                self._channel_error(name, error)
                continue
            attachment.modes = modes
            if not modes & Flag.SUBSCRIBE:
                attachment.channel.unsubscribe(attachment.subscriber)

    # Channels

    async def _on_attach(self, message: dict[str, Any]) -> None:
        name = _channel_name(message)
        writer = self.writer
        try:
            qualified = parse_qualified(name)
            if qualified.params:
                # Params in the name ([?rewind=1]x) apply as if sent with the ATTACH.
                message = {
                    **message,
                    "params": {**qualified.params, **(message.get("params") or {})},
                }
            params = message.get("params") if isinstance(message.get("params"), dict) else None
            if params is not None and check_plain(params) is not None:
                raise AblyError.invalid_param("Attach params must be plain JSON")
            requested = requested_modes(message)
            modes = self._granted_modes(qualified.channel, requested)
            subscriber: Subscriber = self
            if qualified.qualified:
                message_filter = (
                    None if qualified.filter is None else MessageFilter(qualified.filter)
                )
                subscriber = QualifiedSubscriber(self, name, message_filter)
            while True:
                channel = await self.channels.attach(self.identity.app_id, qualified.channel)
                start, error = await self._replay_start(
                    channel, message.get("channelSerial"), rewind_param(message)
                )
                # A sweep may have unloaded the channel while its log was read; attach to the
                # channel that is live now.
                if self.channels.readmit(channel):
                    break
        except AblyError as error:
            self._channel_error(name, error)
            return
        if self.writer is not writer:
            # The socket dropped or was resumed elsewhere while the channel was looked up: this
            # ATTACH belongs to the old one, and the SDK attaches again on the new one.
            return
        self._leave(name)
        attachment = Attachment(channel, modes, requested, subscriber, name)
        self.attachments[name] = attachment
        channel.attached[subscriber] = int(modes)
        mine = self.connection_id
        if any(m["connectionId"] == mine for m in channel.presence.members.values()):
            # Members entered before this node served the connection (a resume from the
            # store): they leave with it like any it enters here.
            self.presence_channels[name] = channel
        flags = modes
        resumed = (
            error is None
            and bool(message.get("channelSerial"))
            and not await self._presence_was_lost(channel)
        )
        if resumed:
            flags |= Flag.RESUMED
        sync = None
        if modes & Flag.PRESENCE_SUBSCRIBE:
            channel.presence.subscribe(subscriber)
            if channel.presence.members:
                flags |= Flag.HAS_PRESENCE
                sync = channel.presence.sync(self.settings.sync_page_size)
        until = channel.delivered_seq
        replay = None
        # SDKs store the ATTACHED channelSerial as their resume point (RTL15b): on a resume it
        # must be where the replay starts, or a drop before the replay arrives skips it.
        attached_serial = channel.serial
        if modes & Flag.SUBSCRIBE:
            if start is not None and start < until:
                replay = Replay(channel, start, until)
                attachment.backlog = []
                flags |= Flag.HAS_BACKLOG
                if resumed:
                    attached_serial = format_serial(channel.log.epoch, start)
            view = self._views.pop(name, None)
            channel.subscribe(subscriber, start, view if resumed else None)
            if params is not None and params.get("delta") == "vcdiff":
                channel.deltas.want(subscriber, replaying=replay is not None)
        reply: dict[str, Any] = {
            "action": Action.ATTACHED,
            "channel": name,
            "flags": int(flags),
            "channelSerial": attached_serial,
        }
        params = attach_params(message)
        if params:
            reply["params"] = params
        if error is not None:
            reply["error"] = error.to_dict()
        self.send(reply)
        for page in sync or ():
            self.send({**page, "channel": name})
        if replay is not None:
            attachment.replaying = asyncio.create_task(self._replay(attachment, replay))

    async def _presence_was_lost(self, channel: Channel) -> bool:
        """Whether members this client entered on `channel` are gone from the relay (its grace
        ran out, or its previous connection could not be resumed): then the attach must not be
        RESUMED, which is what makes an SDK re-enter them."""
        if self.lost_presence is not None and channel.name in self.lost_presence:
            self.lost_presence.discard(channel.name)
            return True
        if self.replaces is None:
            return False
        last = await channel.store.last_presence(channel.log.channel_id, self.replaces)
        if last is None or last.get("action") == PresenceAction.LEAVE:
            return False
        # A connection resumed from the store replaces itself: once it has re-entered here,
        # nothing is lost any more.
        mine = self.connection_id
        return not any(m["connectionId"] == mine for m in channel.presence.members.values())

    async def _replay_start(
        self, channel: Channel, channel_serial: Any, rewind: str | None
    ) -> tuple[int | None, AblyError | None]:
        """The seq the attach replays after (None: live only), and the continuity error if any."""
        if channel_serial:
            point = resume_from(channel, channel_serial)
            metrics = self.channels.metrics
            if metrics is not None:
                outcome = "continuity_lost" if isinstance(point, AblyError) else "resumed"
                metrics.channel_resumes.labels(outcome).inc()
            if isinstance(point, AblyError):
                return None, point
            return point, None
        if rewind is not None:
            return await rewind_from(channel, rewind), None
        return None, None

    async def _replay(self, attachment: Attachment, replay: Replay) -> None:
        """Send the log from the replay's start, then the live deliveries held back meanwhile
        (less those the replayed aggregates already include)."""
        channel, name, subscriber = attachment.channel, attachment.name, attachment.subscriber
        deltas = DeltaChain() if subscriber in channel.deltas.wanted else None
        try:
            async for page, channel_serial in replay.pages():
                if self.attachments.get(name) is not attachment:
                    return
                messages = page
                if isinstance(subscriber, QualifiedSubscriber):
                    messages = subscriber.select(page)
                    if not messages:
                        continue
                self.send(
                    {
                        "action": Action.MESSAGE,
                        "channel": name,
                        "channelSerial": channel_serial,
                        "messages": messages if deltas is None else deltas.apply(messages),
                    }
                )
        except Exception:
            log.exception("replay of %s failed", name)
            self._channel_error(name, AblyError(90000, 500, "Channel replay failed"))
            return
        backlog = attachment.backlog or []
        attachment.backlog = None
        if self.attachments.get(name) is attachment:
            for outgoing in backlog:
                if not replay.covers(outgoing.change):
                    self.deliver(outgoing)

    def _granted_modes(self, name: str, wanted: Flag) -> Flag:
        """The modes of `wanted` the capability allows on `name`; 40160 when it allows none
        and no history either."""
        capability = self.identity.capability
        granted = Flag(0)
        for mode, op in MODE_FLAGS.items():
            if mode & wanted and capability.allows(name, op):
                granted |= mode
        if not granted and not capability.allows(name, "history"):
            raise AblyError.forbidden(f"Channel denied access based on capability: {name}")
        return granted

    def _on_sync(self, message: dict[str, Any]) -> None:
        """A client's SYNC request (ably-js channel.sync()): the whole member set again, as
        after an attach; members the client holds that are missing from it then leave."""
        name = _channel_name(message)
        attachment = self.attachments.get(name)
        if attachment is None or not attachment.modes & Flag.PRESENCE_SUBSCRIBE:
            self._channel_error(
                name, AblyError(90001, 400, "Presence SYNC needs a channel attached to it")
            )
            return
        for page in attachment.channel.presence.sync(self.settings.sync_page_size):
            self.send(page)

    def _on_detach(self, message: dict[str, Any]) -> None:
        name = _channel_name(message)
        self._leave(name)
        # Detaching leaves the channel's presence at once (no grace: the client asked).
        channel = self.presence_channels.pop(name, None)
        if channel is not None:
            channel.presence.leave_connection(self.connection_id)
        self.send({"action": Action.DETACHED, "channel": name})

    def _leave(self, name: str) -> None:
        attachment = self.attachments.pop(name, None)
        if attachment is not None:
            channel = attachment.channel
            channel.unsubscribe(attachment.subscriber)
            channel.presence.unsubscribe(attachment.subscriber)
            channel.attached.pop(attachment.subscriber, None)
            if attachment.replaying is not None:
                attachment.replaying.cancel()

    def _detach_all(self) -> None:
        # Kept for a resume: what each subscription had already received.
        for name, attachment in self.attachments.items():
            view = attachment.channel.subscribers.get(attachment.subscriber)
            if view is not None:
                self._views[name] = view
        for name in list(self.attachments):
            self._leave(name)

    def _channel_error(self, name: str, error: AblyError) -> None:
        """A channel-scoped ERROR: that channel fails, the connection carries on."""
        self._leave(name)
        self.send({"action": Action.ERROR, "channel": name, "error": error.to_dict()})

    # Publishing

    async def _on_message(self, message: dict[str, Any]) -> None:
        msg_serial = _msg_serial(message)
        acks = self.acks
        if acks.seen(msg_serial):
            return
        name = message.get("channel")
        ack = acks.expect(msg_serial, "publish", name)
        identity = self.identity
        max_size = self.settings.max_message_size
        attached_as = name
        try:
            name = _publishable(name)
            raw = message.get("messages")
            self._check_rate(raw)
            change = _single_change(raw)
            if change is None and not identity.capability.allows(name, "publish"):
                raise AblyError.forbidden(f"Unable to publish to channel {name}: not permitted")
            self._check_mode(attached_as, _PUBLISH)
            if change is not None:
                op = parse_mutation(change, max_size)
                may_change_some(identity, name, op["action"])
                channel = self.channels.peek(identity.app_id, name) or await self.channels.find(
                    identity.app_id, name
                )
                if channel is None:
                    raise AblyError.not_found(f"No message with serial {op['serial']!r}")
                channel.mutate(
                    op,
                    ack,
                    identity=identity,
                    channel_name=name,
                    max_size=max_size,
                    connection_id=self.connection_id,
                )
                return
            messages = parse_messages(raw, max_size)
            stamp_client_ids(identity, messages)
            channel = self.channels.peek(identity.app_id, name) or await self.channels.get(
                identity.app_id, name
            )
            channel.publish(
                messages,
                ack,
                connection_id=self.connection_id,
                id_base=f"{self.connection_id}:{msg_serial}",
                resendable=True,
            )
        except Exception as exc:
            ack(None, self._as_error(exc, name))

    async def _on_presence(self, message: dict[str, Any]) -> None:
        msg_serial = _msg_serial(message)
        if self.acks.seen(msg_serial):
            return
        name = message.get("channel")
        ack = self._reply(msg_serial, name, "presence")
        attached_as = name
        try:
            name = _publishable(name)
            self._check_rate(message.get("presence"))
            attachment = self.attachments.get(attached_as)
            if attachment is None:
                raise AblyError(91001, 400, "Cannot enter presence: the channel is not attached")
            if not self.identity.capability.allows(name, "presence"):
                raise AblyError.forbidden(f"Presence not permitted on channel {name}")
            self._check_mode(attached_as, Flag.PRESENCE)
            events = parse_presence(message.get("presence"), self.settings.max_message_size)
            for event in events:
                client_id = message_client_id(self.identity, event.get("clientId"))
                if client_id is None:
                    raise AblyError(91000, 400, "Cannot enter presence without a clientId")
                event["clientId"] = client_id
            channel = attachment.channel
            if not channel.stored:
                # The first write to a channel attached before anything was written to it.
                channel = await self.channels.get(self.identity.app_id, name)
            self.presence_channels[name] = channel
            channel.presence.publish(
                events,
                ack,
                connection_id=self.connection_id,
                id_base=f"{self.connection_id}:{msg_serial}",
            )
        except Exception as exc:
            ack(None, self._as_error(exc, name))

    async def _on_annotation(self, message: dict[str, Any]) -> None:
        """Annotations published (channel_relay.channels.annotations); ACKed once stored."""
        msg_serial = _msg_serial(message)
        if self.acks.seen(msg_serial):
            return
        name = _channel_name(message)
        ack = self._reply(msg_serial, name, "annotation")
        annotations = self.channels.annotations
        assert annotations is not None
        attached_as = name
        try:
            name = _publishable(name)
            raw = message.get("annotations")
            self._check_rate(raw)
            if not self.identity.capability.allows(name, "annotation-publish"):
                raise AblyError.forbidden(f"Unable to annotate on channel {name}: not permitted")
            self._check_mode(attached_as, Flag.ANNOTATION_PUBLISH)
            items = parse_annotations(raw, self.settings.max_message_size)
            stamp_client_ids(self.identity, items)
            channel = self.channels.peek(self.identity.app_id, name) or await self.channels.get(
                self.identity.app_id, name
            )
            serials = await annotations.publish(
                channel,
                items,
                id_base=f"{self.connection_id}:{msg_serial}",
                connection_id=self.connection_id,
            )
        except AblyError as error:
            ack(None, error)
            return
        ack(list(serials), None)

    def _check_mode(self, name: str, mode: Flag) -> None:
        """40165 when the channel is attached without `mode`, one mode (the SDK did not request
        it, or the capability did not grant it). Publishing to a channel not attached needs no
        mode."""
        attachment = self.attachments.get(name)
        # `in`, not `&`: a Flag's `&` makes a new Flag through the enum machinery, on every
        # publish.
        if attachment is not None and mode not in attachment.modes:
            raise AblyError(
                40165,
                401,
                f"Channel {name} was attached without the {mode.name.lower()} mode",
            )

    def _reply(self, msg_serial: int, channel: Any, what: str) -> Any:
        """The callback that answers one publish (ACK or NACK, timed); a NACK is logged."""
        return self.acks.expect(msg_serial, what, channel)

    def _log_refused(self, what: str, channel: Any, error: AblyError) -> None:
        name = channel if isinstance(channel, str) and valid_text(channel) else None
        log.info(
            "%s refused on %s: %s (%d)",
            what,
            name,
            error.message,
            error.code,
            extra={"connection_id": self.connection_id, "channel": name, "code": error.code},
        )

    def _check_rate(self, items: Any) -> None:
        """Count a publish against max_inbound_rate (messages per second); 42911 past it."""
        limit = self.settings.max_inbound_rate
        if not limit:
            return
        second = int(time.monotonic())
        if second != self._rate_second:
            self._rate_second, self._rate_count = second, 0
        self._rate_count += len(items) if isinstance(items, list) else 1
        if self._rate_count > limit:
            if self.channels.metrics is not None:
                self.channels.metrics.rate_limited.inc()
            raise AblyError(
                42911,
                429,
                f"Rate limit exceeded: this connection may publish {limit} messages per second",
            )

    def _unsupported(self, message: dict[str, Any]) -> None:
        action = message.get("action")
        error = AblyError.bad_request(f"Protocol action {action!r} is not supported")
        msg_serial = message.get("msgSerial")
        if is_int(msg_serial) and msg_serial >= 0:
            if not self.acks.seen(msg_serial):
                self.acks.expect(msg_serial)(None, error)
        elif isinstance(message.get("channel"), str):
            self._channel_error(message["channel"], error)
        else:
            raise _Fatal(error)


class _Fatal(Exception):
    """A protocol violation that ends the connection."""

    def __init__(self, error: AblyError) -> None:
        super().__init__(error.message)
        self.error = error


def _channel_name(message: dict[str, Any]) -> str:
    name = message.get("channel")
    if not isinstance(name, str):
        raise _Fatal(AblyError.invalid_channel_name("Protocol message has no channel name"))
    return name


def _publishable(name: Any) -> str:
    """The channel a publish, presence or annotation on `name` acts on: a qualified name's
    base channel (40010 for an invalid name; 40160 for a metachannel, which only the service
    writes to)."""
    channel = base_channel(name)
    if channel.startswith("[meta]"):
        raise AblyError.forbidden(f"Metachannel {channel} cannot be written to")
    return channel


def _single_change(raw: Any) -> dict[str, Any] | None:
    """The update, delete or append a MESSAGE carries (always on its own), if it is one."""
    if (
        isinstance(raw, list)
        and len(raw) == 1
        and isinstance(raw[0], dict)
        and is_int(raw[0].get("action"))
        and raw[0]["action"] in MUTATIONS
    ):
        return raw[0]
    return None


# msgSerial is a JavaScript number in ably-js: beyond 2**53 it cannot count on exactly.
_MAX_MSG_SERIAL = 2**53


def _msg_serial(message: dict[str, Any]) -> int:
    serial = message.get("msgSerial")
    if not is_int(serial) or not 0 <= serial < _MAX_MSG_SERIAL:
        raise _Fatal(AblyError.bad_request("MESSAGE without a valid msgSerial"))
    return serial
