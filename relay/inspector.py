"""The web inspector at /inspect: a page that watches an app's channels in the browser.

The page (static/inspector/, no build step) is an Ably client of its own: it speaks the JSON
realtime protocol over WebSocket and calls the REST API (GET /channels, channel status,
history, presence, /stats, /push/notifications, and /admin/apps for the relay's admin key) with
the key the user gives it. The page itself carries no data, so it is
served to anyone; every piece of data comes through routes that authenticate like the REST API.
Two routes exist for the inspector only, since Ably's API has nothing like them: the app the
key belongs to, and the app's connections.

`Settings.inspector` (on by default, `--no-inspector`) decides whether any of this is served.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp import web

from channel_relay.auth.authenticator import Authenticator
from channel_relay.auth.identity import Identity
from channel_relay.protocol.actions import MODE_FLAGS
from channel_relay.protocol.errors import AblyError
from channel_relay.realtime.connection import Connection
from channel_relay.realtime.endpoint import RealtimeEndpoint
from channel_relay.rest.negotiate import reply

__all__ = ["InspectorApi"]

STATIC = Path(__file__).resolve().parent / "static" / "inspector"


class InspectorApi:
    def __init__(self, authenticator: Authenticator, realtime: RealtimeEndpoint) -> None:
        self.auth = authenticator
        self.realtime = realtime

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/inspect", self.page),
            web.get("/inspect/", self.page),
            web.get("/inspect/api/app", self.app),
            web.get("/inspect/api/connections", self.connections),
            web.static("/inspect/assets", STATIC),
        ]

    async def page(self, request: web.Request) -> web.FileResponse:
        # A key given in the query string must not be kept by caches or sent on as a referrer.
        return web.FileResponse(
            STATIC / "index.html",
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )

    async def app(self, request: web.Request) -> web.Response:
        """The app the credential belongs to, as far as the credential itself may see it."""
        identity = self._identify(request)
        return reply(
            request,
            {
                "appId": identity.app_id,
                "keyName": identity.key_name,
                "clientId": identity.client_id,
                "method": identity.method,
                "capability": json.loads(identity.capability.to_json()),
                "channelEnumeration": identity.capability.allows_app_wide("channel-metadata"),
            },
        )

    async def connections(self, request: web.Request) -> web.Response:
        """The app's realtime connections, live and awaiting resume. Like GET /channels, this
        needs channel-metadata app-wide: it names channels and clients across the app."""
        identity = self._identify(request)
        if not identity.capability.allows_app_wide("channel-metadata"):
            raise AblyError.forbidden("Listing connections needs channel-metadata on *")
        rows = [
            _describe(c)
            for c in self.realtime.connections.values()
            if c.identity.app_id == identity.app_id and not c.closed
        ]
        rows.sort(key=lambda row: (row["clientId"] or "", row["connectionId"]))
        return reply(request, rows)

    def _identify(self, request: web.Request) -> Identity:
        return self.auth.request_headers(
            request.headers.get("Authorization"),
            request.headers.get("X-Ably-ClientId"),
            request.query.get("key"),
        )


def _describe(connection: Connection) -> dict[str, Any]:
    identity = connection.identity
    return {
        "connectionId": connection.connection_id,
        "clientId": identity.client_id,
        "keyName": identity.key_name,
        "auth": identity.method,
        "state": "connected" if connection.dropped_at is None else "disconnected",
        "format": connection.format,
        "channels": [
            {"name": name, "modes": [str(f.name).lower() for f in MODE_FLAGS if a.modes & f]}
            for name, a in sorted(connection.attachments.items())
        ],
    }
