"""App administration for the `relay apps` and `relay keys` commands (and the inspector): what
Ably's Control API does for an account, answered by the relay for its own apps.

    GET    /admin/apps                 every app: appId, its key names, channel count
    POST   /admin/apps                 a new app (body: an optional `post_apps`-shaped spec)
    DELETE /admin/apps/{appId}         the app, its keys and all its data
    GET    /admin/apps/{appId}/keys    the app's keys, secrets included

Only the relay's admin key may call them: its first key (the generated default key of local
development, else the first key of the settings), with Basic auth; anyone else gets 40160.
"""

from __future__ import annotations

from collections import Counter

from aiohttp import web

from channel_relay.apps import Apps
from channel_relay.auth.authenticator import Authenticator
from channel_relay.channels.rules import ChannelRules
from channel_relay.protocol.errors import AblyError
from channel_relay.provisioning import AppSpec, Sandbox
from channel_relay.rest.negotiate import read_body, reply

__all__ = ["AdminApi"]

_MAX_BODY = 1024 * 1024


class AdminApi:
    def __init__(self, apps: Apps, sandbox: Sandbox, authenticator: Authenticator) -> None:
        self.apps = apps
        self.sandbox = sandbox
        self.auth = authenticator
        # The key name allowed here; set once the relay has loaded its keys.
        self.admin_key_name = ""

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/admin/apps", self.list_apps),
            web.post("/admin/apps", self.create_app),
            web.delete("/admin/apps/{app_id}", self.delete_app),
            web.get("/admin/apps/{app_id}/keys", self.list_keys),
        ]

    async def list_apps(self, request: web.Request) -> web.Response:
        self._check_admin(request)
        channels = Counter(app_id for _, app_id, _ in await self.sandbox.store.channel_list())
        keys: dict[str, list[str]] = {}
        every_key = self.apps.keys()
        for key in every_key:
            keys.setdefault(key.app_id, []).append(key.name)
        admin_app = self.admin_key_name.partition(".")[0]
        items = [
            {
                "appId": app_id,
                "keys": sorted(names),
                "channels": channels.get(app_id, 0),
                "admin": app_id == admin_app,
            }
            for app_id, names in sorted(keys.items())
        ]
        return reply(request, items)

    async def create_app(self, request: web.Request) -> web.Response:
        """An app made as the sandbox makes them, except that channels outside its namespaces
        get the default app's open rules (mutable messages on), as `relay serve` gives."""
        self._check_admin(request)
        body = await read_body(request, _MAX_BODY) if request.can_read_body else {}
        app = await self.sandbox.create_app(AppSpec.parse(body or {}, ChannelRules()))
        host = request.url.host or "localhost"
        port = request.url.port or 80
        return reply(request, app.to_dict(host, port, request.secure), status=201)

    async def delete_app(self, request: web.Request) -> web.Response:
        self._check_admin(request)
        app_id = request.match_info["app_id"]
        if app_id == self.admin_key_name.partition(".")[0]:
            raise AblyError(40000, 400, "The app of the relay's admin key cannot be deleted")
        if not self.apps.keys_of(app_id):
            raise AblyError.not_found(f"No app {app_id}")
        await self.sandbox.delete_app(app_id)
        return web.Response(status=204)

    async def list_keys(self, request: web.Request) -> web.Response:
        self._check_admin(request)
        app_id = request.match_info["app_id"]
        keys = self.apps.keys_of(app_id)
        if not keys:
            raise AblyError.not_found(f"No app {app_id}")
        items = [
            {"keyName": k.name, "key": str(k), "capability": k.capability.to_json()} for k in keys
        ]
        return reply(request, items)

    def _check_admin(self, request: web.Request) -> None:
        identity = self.auth.request_headers(
            request.headers.get("Authorization"),
            request.headers.get("X-Ably-ClientId"),
            request.query.get("key"),
        )
        if identity.method != "basic" or identity.key_name != self.admin_key_name:
            raise AblyError.forbidden(
                "Apps are managed with the relay's admin key (its first key, named at start)"
            )
