"""`/channels/{name}/messages/{serial}/annotations`: publishing a message's annotations over
REST and listing them, oldest first (channel_relay.channels.annotations)."""

from __future__ import annotations

import secrets

from aiohttp import web

from channel_relay.auth.authenticator import Authenticator, stamp_client_ids
from channel_relay.auth.identity import Identity
from channel_relay.channels.annotations import Annotations
from channel_relay.channels.registry import ChannelRegistry
from channel_relay.config import Settings
from channel_relay.protocol.errors import AblyError
from channel_relay.protocol.validation import check_channel_name, parse_annotations
from channel_relay.rest.negotiate import read_body, reply
from channel_relay.rest.paging import OffsetPage
from channel_relay.rest.routes import path_channel_name

__all__ = ["AnnotationsApi"]


class AnnotationsApi:
    def __init__(
        self,
        settings: Settings,
        channels: ChannelRegistry,
        annotations: Annotations,
        authenticator: Authenticator,
    ) -> None:
        self.settings = settings
        self.channels = channels
        self.annotations = annotations
        self.auth = authenticator

    def routes(self) -> list[web.RouteDef]:
        path = "/channels/{name:[\\s\\S]+}/messages/{serial}/annotations"
        return [web.post(path, self.publish), web.get(path, self.list)]

    async def publish(self, request: web.Request) -> web.Response:
        identity, name = self._caller(request, "annotation-publish")
        body = await read_body(request, self.settings.max_frame_size)
        items = body if isinstance(body, list) else [body]
        serial = request.match_info["serial"]
        for item in items:
            if isinstance(item, dict):
                item.setdefault("messageSerial", serial)
        annotations = parse_annotations(items, self.settings.max_message_size)
        if any(a["messageSerial"] != serial for a in annotations):
            raise AblyError.invalid_param("An annotation's messageSerial differs from the path")
        stamp_client_ids(identity, annotations)
        channel = await self.channels.get(identity.app_id, name)
        serials = await self.annotations.publish(
            channel, annotations, id_base=secrets.token_urlsafe(12)
        )
        return reply(request, {"serials": serials}, status=201)

    async def list(self, request: web.Request) -> web.Response:
        identity, name = self._caller(request, "history")
        page = OffsetPage.parse(request.query)
        # One more than the page tells whether there is a next page.
        items = await self.annotations.store.page(
            identity.app_id, name, request.match_info["serial"], page.offset, page.limit + 1
        )
        links = page.links("annotations", request.query, len(items) > page.limit)
        return reply(request, items[: page.limit], headers={"Link": links})

    def _caller(self, request: web.Request, op: str) -> tuple[Identity, str]:
        identity = self.auth.request_headers(
            request.headers.get("Authorization"),
            request.headers.get("X-Ably-ClientId"),
            request.query.get("key"),
        )
        name = check_channel_name(path_channel_name(request))
        if not identity.capability.allows(name, op):
            raise AblyError.forbidden(f"Operation {op} not permitted on channel {name}")
        return identity, name
