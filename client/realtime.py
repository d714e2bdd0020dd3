"""The Realtime client: one connection, its channels, and REST on the same host and auth."""

from __future__ import annotations

import contextlib
from typing import Any

from channel_relay.client.auth import Auth, AuthCallback, TokenDetails
from channel_relay.client.channel import Channel
from channel_relay.client.connection import Connection, ConnectionState
from channel_relay.client.errors import AblyError
from channel_relay.client.rest import Rest
from channel_relay.protocol.actions import Flag
from channel_relay.protocol.codec import Format

__all__ = ["Channels", "Realtime"]


class Channels:
    """`client.channels`: `get(name)` returns the one Channel object for that name."""

    def __init__(self, client: Realtime) -> None:
        self._client = client
        self._channels: dict[str, Channel] = {}

    def get(
        self, name: str, *, params: dict[str, str] | None = None, modes: Flag | None = None
    ) -> Channel:
        channel = self._channels.get(name)
        if channel is None:
            channel = Channel(self._client, name, params=params, modes=modes)
            self._channels[name] = channel
        return channel

    async def release(self, name: str) -> None:
        """Detach and forget a channel."""
        channel = self._channels.pop(name, None)
        if channel is not None:
            with contextlib.suppress(AblyError, TimeoutError):
                await channel.detach()

    def __iter__(self):
        return iter(list(self._channels.values()))

    def __contains__(self, name: str) -> bool:
        return name in self._channels


class Realtime:
    """A realtime client. Credentials: `key` ("APPID.KEYID:SECRET"), `token` (a native token
    or an Ably JWT), `token_details`, or `auth_callback` (sync or async, returning a token
    string or a TokenDetails dict; called again whenever the token must be renewed).

    `url` is the relay's base, e.g. "http://localhost:8080" (the WebSocket URL is derived:
    ws://, same host and port). Use as `async with Realtime(...) as client:` or call
    `await client.connect()` / `await client.close()`.
    """

    def __init__(
        self,
        key: str | None = None,
        *,
        token: str | None = None,
        token_details: TokenDetails | None = None,
        auth_callback: AuthCallback | None = None,
        client_id: str | None = None,
        url: str = "http://localhost:8080",
        format: Format = "msgpack",
        echo: bool = True,
        use_token_auth: bool = False,
        token_params: dict[str, Any] | None = None,
        transport_params: dict[str, str] | None = None,
    ) -> None:
        self.auth = Auth(
            key=key,
            token=token,
            token_details=token_details,
            auth_callback=auth_callback,
            client_id=client_id,
            use_token_auth=use_token_auth,
            token_params=token_params,
        )
        base = url.rstrip("/")
        self.auth.base_url = base
        ws_url = "ws" + base[4:] if base.startswith("http") else base
        self.rest = Rest(base, self.auth, format)
        self.connection = Connection(
            ws_url,
            self.auth,
            fmt=format,
            client_id=client_id,
            echo=echo,
            params=transport_params,
        )
        self.channels = Channels(self)
        self.connection.on("message", self._route)
        self.connection.on("connected", self._on_connected)
        self.connection.on("state", self._on_state)

    @property
    def client_id(self) -> str | None:
        """The clientId of this connection (as confirmed by the relay once connected)."""
        return self.connection.client_id

    async def connect(self) -> None:
        """Connect and wait for CONNECTED. Raises ConnectionFailedError (bad key, ...)."""
        await self.connection.connect()

    async def close(self) -> None:
        """Close the connection (no resume afterwards) and the REST session."""
        await self.connection.close()
        await self.rest.close()

    async def __aenter__(self) -> Realtime:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _route(self, message: dict[str, Any]) -> None:
        name = message.get("channel")
        if name and name in self.channels:
            self.channels.get(name)._on_message(message)

    def _on_connected(self, resumed: bool, _error: AblyError | None) -> None:
        for channel in self.channels:
            channel._on_connected(resumed)

    def _on_state(self, state: ConnectionState, error: AblyError | None) -> None:
        if state == ConnectionState.FAILED and error is not None:
            for channel in self.channels:
                channel._on_connection_failed(error)
