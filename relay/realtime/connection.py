"""One realtime connection: the ProtocolMessage exchange with one Ably SDK over a WebSocket."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from relay.auth.identity import Identity
from relay.channels.channel import Channel
from relay.channels.outgoing import Outgoing
from relay.channels.registry import ChannelRegistry
from relay.config import Settings
from relay.protocol.actions import MODE_FLAGS, Action, Flag
from relay.protocol.codec import Format, decode_frame, encode_frame
from relay.protocol.errors import AblyError
from relay.protocol.validation import check_channel_name, parse_messages, stamp_client_id
from relay.realtime.frames import ws_frame

__all__ = ["Connection"]

log = logging.getLogger(__name__)

_ALL_MODES = Flag(0)
for _mode in MODE_FLAGS:
    _ALL_MODES |= _mode
# Modes granted when an ATTACH requests none: Ably's defaults (no annotations or objects).
_DEFAULT_MODES = Flag.PUBLISH | Flag.SUBSCRIBE | Flag.PRESENCE | Flag.PRESENCE_SUBSCRIBE


@dataclass(slots=True)
class Attachment:
    channel: Channel
    modes: Flag


class Connection:
    """Reads frames, acts on them in arrival order, and writes replies and deliveries.

    Publishes are pipelined: a MESSAGE is numbered and queued for commit, and the read loop
    moves on; its ACK is written when the store reports it durable, in msgSerial order.
    Everything written goes straight to the transport as a pre-built frame.
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport,
        identity: Identity,
        fmt: Format,
        echo: bool,
        settings: Settings,
        channels: ChannelRegistry,
    ) -> None:
        self.ws = ws
        self.transport = transport
        self.identity = identity
        self.format = fmt
        self.echo = echo
        self.settings = settings
        self.channels = channels
        self.connection_id = secrets.token_urlsafe(8).replace("-", "x").replace("_", "y")
        self.connection_key = f"{secrets.token_urlsafe(12)}!{self.connection_id}"
        self.attachments: dict[str, Attachment] = {}
        self.frames_sent = 0
        self.closed = False

    # Writing

    def send(self, message: dict[str, Any]) -> None:
        self._write(ws_frame(encode_frame(message, self.format)))

    def deliver(self, outgoing: Outgoing) -> None:
        frame = outgoing.frames.get(self.format)
        if frame is None:
            frame = ws_frame(encode_frame(outgoing.message, self.format))
            outgoing.frames[self.format] = frame
        self._write(frame)

    def _write(self, frame: bytes) -> None:
        transport = self.transport
        if self.closed or transport.is_closing():
            return
        transport.write(frame)
        self.frames_sent += 1
        if transport.get_write_buffer_size() > self.settings.max_outbound_buffer:
            # A subscriber that cannot keep up must not hold the channel back or grow memory
            # without bound: drop it; the SDK reconnects and catches up from the log.
            log.warning("disconnecting slow consumer %s", self.connection_id)
            self.closed = True
            self._detach_all()
            transport.abort()

    def connected_message(self) -> dict[str, Any]:
        s = self.settings
        details: dict[str, Any] = {
            "connectionKey": self.connection_key,
            "maxMessageSize": s.max_message_size,
            "maxFrameSize": s.max_frame_size,
            "maxInboundRate": 1000,
            "connectionStateTtl": s.connection_state_ttl,
            "maxIdleInterval": s.max_idle_interval,
            "serverId": "channel-relay",
        }
        if self.identity.client_id is not None:
            details["clientId"] = self.identity.client_id
        return {
            "action": Action.CONNECTED,
            "connectionId": self.connection_id,
            "connectionDetails": details,
        }

    # Reading

    async def serve(self) -> None:
        """Handle frames until the socket closes; always leaves the channels it was attached to."""
        try:
            async for frame in self.ws:
                if frame.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                if len(frame.data) > self.settings.max_frame_size:
                    await self.fail(AblyError.too_large("Protocol message exceeds maxFrameSize"))
                    break
                try:
                    message = decode_frame(frame.data)
                    await self.handle(message)
                except _Fatal as fatal:
                    await self.fail(fatal.error)
                    break
                except AblyError as error:
                    await self.fail(error)
                    break
        finally:
            self.closed = True
            self._detach_all()

    async def fail(self, error: AblyError) -> None:
        """A connection-level ERROR: the SDK moves the connection to FAILED."""
        self.send({"action": Action.ERROR, "error": error.to_dict()})
        self.closed = True
        await self.ws.close()

    async def handle(self, message: dict[str, Any]) -> None:
        action = message.get("action")
        handler = self._handlers.get(action) if isinstance(action, int) else None
        if handler is None:
            self._unsupported(message)
            return
        await handler(self, message)

    async def _on_heartbeat(self, message: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"action": Action.HEARTBEAT}
        if message.get("id") is not None:
            reply["id"] = message["id"]
        self.send(reply)

    async def _on_close(self, message: dict[str, Any]) -> None:
        self.send({"action": Action.CLOSED, "connectionId": self.connection_id})
        self.closed = True
        await self.ws.close()

    async def _on_disconnect(self, message: dict[str, Any]) -> None:
        self.closed = True
        await self.ws.close()

    async def _on_attach(self, message: dict[str, Any]) -> None:
        name = _channel_name(message)
        try:
            check_channel_name(name)
            modes = self._granted_modes(name, message.get("flags"))
            channel = await self.channels.get(self.identity.app_id, name)
        except AblyError as error:
            self._channel_error(name, error)
            return
        previous = self.attachments.get(name)
        if previous is not None and previous.channel is not channel:
            previous.channel.unsubscribe(self)
        self.attachments[name] = Attachment(channel, modes)
        if modes & Flag.SUBSCRIBE:
            channel.subscribe(self)
        else:
            channel.unsubscribe(self)
        reply: dict[str, Any] = {
            "action": Action.ATTACHED,
            "channel": name,
            "flags": int(modes),
            "channelSerial": channel.serial,
        }
        params = message.get("params")
        if isinstance(params, dict) and params:
            reply["params"] = params
        self.send(reply)

    def _granted_modes(self, name: str, flags: Any) -> Flag:
        capability = self.identity.capability
        requested = Flag(flags) & _ALL_MODES if isinstance(flags, int) and flags > 0 else Flag(0)
        wanted = requested or _DEFAULT_MODES
        granted = Flag(0)
        for mode, op in MODE_FLAGS.items():
            if mode & wanted and capability.allows(name, op):
                granted |= mode
        if not granted and not capability.allows(name, "history"):
            raise AblyError.forbidden(f"Channel denied access based on capability: {name}")
        return granted

    async def _on_detach(self, message: dict[str, Any]) -> None:
        name = _channel_name(message)
        attachment = self.attachments.pop(name, None)
        if attachment is not None:
            attachment.channel.unsubscribe(self)
        self.send({"action": Action.DETACHED, "channel": name})

    async def _on_message(self, message: dict[str, Any]) -> None:
        msg_serial = _msg_serial(message)
        ack = self._acker(msg_serial)
        name = _channel_name(message)
        try:
            check_channel_name(name)
            if not self.identity.capability.allows(name, "publish"):
                raise AblyError.forbidden(f"Unable to publish to channel {name}: not permitted")
            messages = parse_messages(message.get("messages"), self.settings.max_message_size)
            stamp_client_id(self.identity.client_id, messages)
            channel = await self.channels.get(self.identity.app_id, name)
            await channel.publish(
                messages,
                ack,
                connection_id=self.connection_id,
                id_base=f"{self.connection_id}:{msg_serial}",
            )
        except AblyError as error:
            ack(None, error)

    def _acker(self, msg_serial: int) -> Callable[[list[str] | None, AblyError | None], None]:
        def ack(serials: list[str] | None, error: AblyError | None) -> None:
            if error is not None:
                self.send(
                    {
                        "action": Action.NACK,
                        "msgSerial": msg_serial,
                        "count": 1,
                        "error": error.to_dict(),
                    }
                )
            else:
                self.send(
                    {
                        "action": Action.ACK,
                        "msgSerial": msg_serial,
                        "count": 1,
                        "res": [{"serials": serials}],
                    }
                )

        return ack

    def _unsupported(self, message: dict[str, Any]) -> None:
        action = message.get("action")
        error = AblyError.bad_request(f"Protocol action {action!r} is not supported")
        if isinstance(message.get("msgSerial"), int):
            self._acker(message["msgSerial"])(None, error)
        elif isinstance(message.get("channel"), str):
            self._channel_error(message["channel"], error)
        else:
            raise _Fatal(error)

    def _channel_error(self, name: str, error: AblyError) -> None:
        """A channel-scoped ERROR: that channel fails, the connection carries on."""
        attachment = self.attachments.pop(name, None)
        if attachment is not None:
            attachment.channel.unsubscribe(self)
        self.send({"action": Action.ERROR, "channel": name, "error": error.to_dict()})

    def _detach_all(self) -> None:
        for attachment in self.attachments.values():
            attachment.channel.unsubscribe(self)
        self.attachments.clear()

    _handlers: dict[int, Callable[[Connection, dict[str, Any]], Any]] = {
        Action.HEARTBEAT: _on_heartbeat,
        Action.CLOSE: _on_close,
        Action.DISCONNECT: _on_disconnect,
        Action.ATTACH: _on_attach,
        Action.DETACH: _on_detach,
        Action.MESSAGE: _on_message,
    }


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


def _msg_serial(message: dict[str, Any]) -> int:
    serial = message.get("msgSerial")
    if not isinstance(serial, int) or isinstance(serial, bool) or serial < 0:
        raise _Fatal(AblyError.bad_request("MESSAGE without a valid msgSerial"))
    return serial
