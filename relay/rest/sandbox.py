"""Sandbox routes (a relay started with `--sandbox` only): apps made and deleted on demand as
Ably's sandbox does for the SDKs' test suites, stats fixtures, and fault injection.

    POST   /apps             an app from a test-app-setup.json `post_apps` body (no auth)
    DELETE /apps/{appId}     Basic auth with one of the app's keys; the app and its data go
    POST   /stats            stats fixtures for the app of the Basic-auth key
    GET    /sandbox/faults   the app's active faults
    POST   /sandbox/faults   inject faults (see `SandboxApi.inject`)
    DELETE /sandbox/faults   end them (optionally `?channel=NAME`)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from channel_relay.auth.authenticator import Authenticator
from channel_relay.auth.identity import Identity
from channel_relay.config import Settings
from channel_relay.faults import fault_error
from channel_relay.protocol.errors import AblyError
from channel_relay.protocol.validation import check_channel_name
from channel_relay.provisioning import AppSpec, Sandbox
from channel_relay.rest.negotiate import read_body, reply

__all__ = ["SandboxApi"]

# Provisioning bodies are small; the cap only guards the relay.
_MAX_BODY = 1024 * 1024


class SandboxApi:
    def __init__(self, settings: Settings, sandbox: Sandbox, authenticator: Authenticator) -> None:
        self.settings = settings
        self.sandbox = sandbox
        self.auth = authenticator

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/apps", self.create_app),
            web.delete("/apps/{app_id}", self.delete_app),
            web.post("/stats", self.add_stats),
            web.get("/sandbox/faults", self.faults),
            web.post("/sandbox/faults", self.inject),
            web.delete("/sandbox/faults", self.clear_faults),
        ]

    async def create_app(self, request: web.Request) -> web.Response:
        spec = AppSpec.parse(await read_body(request, _MAX_BODY))
        app = await self.sandbox.create_app(spec)
        host = request.url.host or self.settings.host
        port = request.url.port or self.settings.port
        return reply(request, app.to_dict(host, port, request.secure), status=201)

    async def delete_app(self, request: web.Request) -> web.Response:
        identity = self._key_holder(request)
        if identity.app_id != request.match_info["app_id"]:
            raise AblyError(40100, 401, "Deleting an app needs one of its own keys")
        await self.sandbox.delete_app(identity.app_id)
        return web.Response(status=204)

    async def add_stats(self, request: web.Request) -> web.Response:
        identity = self._key_holder(request)
        count = await self.sandbox.add_stats(
            identity.app_id, await read_body(request, self.settings.max_frame_size)
        )
        return reply(request, {"count": count}, status=201)

    async def faults(self, request: web.Request) -> web.Response:
        identity = self._key_holder(request)
        return reply(request, self.sandbox.faults.active(identity.app_id))

    async def inject(self, request: web.Request) -> web.Response:
        """One fault or a list of them, for the app of the Basic-auth key:

        {"type": "fail_publishes", "channel": C, "count": N, "code": 50000,
         "statusCode": 500?, "message": "..."?}  the next N publishes on C fail
        {"type": "delay", "channel": C, "delayMs": D}  deliveries on C arrive D ms late
        {"type": "drop", "connectionId": ID?, "clientId": CID?, "code": 80003?}  drop sockets
            (abruptly, or with DISCONNECTED carrying `code` when given)
        """
        identity = self._key_holder(request)
        body = await read_body(request, _MAX_BODY)
        faults = body if isinstance(body, list) else [body]
        results = [await self._inject(identity.app_id, fault) for fault in faults]
        return reply(request, results if isinstance(body, list) else results[0], status=201)

    async def clear_faults(self, request: web.Request) -> web.Response:
        identity = self._key_holder(request)
        self.sandbox.faults.clear(identity.app_id, request.query.get("channel"))
        return web.Response(status=204)

    async def _inject(self, app_id: str, fault: Any) -> dict[str, Any]:
        if not isinstance(fault, Mapping):
            raise AblyError(40000, 400, "A fault must be an object")
        kind = fault.get("type")
        faults = self.sandbox.faults
        if kind == "fail_publishes":
            channel = _channel(fault)
            count = _int(fault, "count", 1)
            error = fault_error(_int(fault, "code", 50000), fault.get("statusCode"), None)
            if isinstance(fault.get("message"), str):
                error = AblyError(error.code, error.status, fault["message"])
            faults.fail_publishes(app_id, channel, count, error)
            return {"type": kind, "channel": channel, "count": count}
        if kind == "delay":
            channel = _channel(fault)
            delay = _int(fault, "delayMs", 0)
            faults.delay_deliveries(app_id, channel, delay)
            return {"type": kind, "channel": channel, "delayMs": delay}
        if kind == "drop":
            code = fault.get("code")
            dropped = await self.sandbox.drop_connections(
                app_id,
                connection_id=_opt_str(fault, "connectionId"),
                client_id=_opt_str(fault, "clientId"),
                error=None if code is None else fault_error(_int(fault, "code", 80003)),
            )
            return {"type": kind, "dropped": dropped}
        raise AblyError(40000, 400, "Fault type must be fail_publishes, delay or drop")

    def _key_holder(self, request: web.Request) -> Identity:
        identity = self.auth.request_headers(
            request.headers.get("Authorization"),
            request.headers.get("X-Ably-ClientId"),
            request.query.get("key"),
        )
        if identity.method != "basic":
            raise AblyError(40100, 401, "Sandbox routes need Basic auth with an app key")
        return identity


def _channel(fault: Mapping[str, Any]) -> str:
    name = fault.get("channel")
    if not isinstance(name, str):
        raise AblyError(40000, 400, "The fault needs a channel")
    return check_channel_name(name)


def _int(fault: Mapping[str, Any], name: str, default: int) -> int:
    value = fault.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise AblyError(40003, 400, f"{name} must be a non-negative integer")
    return value


def _opt_str(fault: Mapping[str, Any], name: str) -> str | None:
    value = fault.get(name)
    if value is not None and not isinstance(value, str):
        raise AblyError(40003, 400, f"{name} must be a string")
    return value
