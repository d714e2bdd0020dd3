"""REST routes: time, publish and history. Each handler decodes, authorizes, calls the channel
layer and encodes; errors become Ably's envelope in the middleware."""

from __future__ import annotations

import asyncio
import secrets
import time
from urllib.parse import unquote

from aiohttp import web

from relay.apps import Apps
from relay.auth.identity import Identity
from relay.channels.channel import Channel
from relay.channels.history import HistoryParams, read_page
from relay.channels.registry import ChannelRegistry
from relay.config import Settings
from relay.protocol.errors import AblyError
from relay.protocol.validation import check_channel_name, parse_messages, stamp_client_id
from relay.rest.credentials import authenticate_request
from relay.rest.negotiate import read_body, reply

__all__ = ["RestApi"]


class RestApi:
    def __init__(self, settings: Settings, apps: Apps, channels: ChannelRegistry) -> None:
        self.settings = settings
        self.apps = apps
        self.channels = channels

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/time", self.time),
            web.post("/channels/{name:[\\s\\S]+}/messages", self.publish),
            web.get("/channels/{name:[\\s\\S]+}/messages", self.history),
        ]

    async def time(self, request: web.Request) -> web.Response:
        return reply(request, [int(time.time() * 1000)])

    async def publish(self, request: web.Request) -> web.Response:
        identity, channel = await self._channel(request, "publish")
        body = await read_body(request, self.settings.max_frame_size)
        messages = parse_messages(body, self.settings.max_message_size)
        stamp_client_id(identity.client_id, messages)
        id_base = secrets.token_urlsafe(12)
        future: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()

        def done(serials: list[str] | None, error: AblyError | None) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                assert serials is not None
                future.set_result(serials)

        await channel.publish(messages, done, id_base=id_base)
        serials = await future
        first_id = messages[0].get("id", "")
        message_id = first_id.rpartition(":")[0] or first_id
        return reply(
            request,
            {"channel": channel.name, "messageId": message_id, "serials": serials},
            status=201,
        )

    async def history(self, request: web.Request) -> web.Response:
        _, channel = await self._channel(request, "history")
        params = HistoryParams.parse(request.query)
        page = await read_page(channel, params)
        return reply(request, page.messages, headers={"Link": page.links("messages")})

    async def _channel(self, request: web.Request, op: str) -> tuple[Identity, Channel]:
        identity = authenticate_request(request, self.apps)
        name = check_channel_name(unquote(request.match_info["name"]))
        if not identity.capability.allows(name, op):
            raise AblyError.forbidden(f"Operation {op} not permitted on channel {name}")
        return identity, await self.channels.get(identity.app_id, name)
