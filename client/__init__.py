"""channel-relay's thin Python client for Ably's realtime protocol, with AI turn semantics.

    from client import Realtime
    async with Realtime("app.key:secret", client_id="alice", url="http://localhost:8080") as rt:
        channel = rt.channels.get("chat")
        await channel.attach()
        serials = await channel.publish("greeting", "hello")

The turn layer (multi-device AI sessions, wire-compatible with @ably/ai-transport) lives in
`client.turns`; the Vercel AI SDK UIMessage codec in `client.codecs.vercel`.
"""

from client.auth import Auth, request_token
from client.channel import Channel, ChannelState
from client.connection import Connection, ConnectionState
from client.errors import (
    AblyError,
    ChannelFailedError,
    ConnectionFailedError,
    ContinuityLostError,
)
from client.events import Subscription
from client.message import Message, PresenceMessage
from client.presence import Presence
from client.realtime import Realtime
from client.rest import PaginatedResult, Rest

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
