"""channel-relay's thin Python client for Ably's realtime protocol, with AI turn semantics.

    from channel_relay.client import Realtime
    async with Realtime("app.key:secret", client_id="alice", url="http://localhost:8080") as rt:
        channel = rt.channels.get("chat")
        await channel.attach()
        serials = await channel.publish("greeting", "hello")

The turn layer (multi-device AI sessions, wire-compatible with @ably/ai-transport) lives in
`channel_relay.client.turns`; the Vercel AI SDK UIMessage codec in
`channel_relay.client.codecs.vercel`.
"""

from channel_relay.client.auth import Auth, request_token
from channel_relay.client.channel import Channel, ChannelState
from channel_relay.client.connection import Connection, ConnectionState
from channel_relay.client.errors import (
    AblyError,
    ChannelFailedError,
    ConnectionFailedError,
    ContinuityLostError,
)
from channel_relay.client.events import Subscription
from channel_relay.client.message import Message, PresenceMessage
from channel_relay.client.presence import Presence
from channel_relay.client.realtime import Realtime
from channel_relay.client.rest import PaginatedResult, Rest

__all__ = [
    "AblyError",
    "Auth",
    "Channel",
    "ChannelFailedError",
    "ChannelState",
    "Connection",
    "ConnectionFailedError",
    "ConnectionState",
    "ContinuityLostError",
    "Message",
    "PaginatedResult",
    "Presence",
    "PresenceMessage",
    "Realtime",
    "Rest",
    "Subscription",
    "request_token",
]
