"""The push admin API (`/push/...`), as ably-js's `push.admin` and Push plugin call it, plus
`GET /push/notifications`: what the relay recorded instead of calling APNs, FCM or web push.

Callers authenticate as for any REST request; a device may also act on itself with the
identity token it got at registration (`X-Ably-DeviceToken`, or as the Bearer token). Admin
operations need the `push-admin` capability app-wide; a client may subscribe its own clientId,
or a device it holds the token of, with `push-subscribe` on the channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from channel_relay.auth.authenticator import Authenticator
from channel_relay.auth.credentials import parse_authorization
from channel_relay.auth.identity import Identity
from channel_relay.config import Settings
from channel_relay.protocol.errors import AblyError
from channel_relay.push.devices import parse_subscription, public_device
from channel_relay.push.service import DEVICE_TOKEN_PREFIX, Push
from channel_relay.rest.negotiate import read_body, reply
from channel_relay.rest.paging import OffsetPage

__all__ = ["PushApi"]


@dataclass(frozen=True, slots=True)
class _Caller:
    """Who calls: an app identity (key or token), and the device whose token it presents."""

    app_id: str
    identity: Identity | None
    device_id: str | None

    @property
    def admin(self) -> bool:
        return self.identity is not None and self.identity.capability.allows_app_wide("push-admin")

    def may(self, op: str, channel: str | None = None) -> bool:
        if self.identity is None:
            return False
        capability = self.identity.capability
        if channel is None:
            return any(op in ops or "*" in ops for ops in capability.grants.values())
        return capability.allows(channel, op)


class PushApi:
    def __init__(self, settings: Settings, push: Push, authenticator: Authenticator) -> None:
        self.settings = settings
        self.push = push
        self.auth = authenticator

    def routes(self) -> list[web.RouteDef]:
        devices = "/push/deviceRegistrations"
        return [
            web.post("/push/publish", self.publish),
            web.post(devices, self.register),
            web.get(devices, self.list_devices),
            web.delete(devices, self.remove_devices),
            web.put(devices + "/{device_id}", self.save_device),
            web.patch(devices + "/{device_id}", self.update_device),
            web.get(devices + "/{device_id}", self.get_device),
            web.delete(devices + "/{device_id}", self.remove_device),
            web.post("/push/channelSubscriptions", self.subscribe),
            web.get("/push/channelSubscriptions", self.list_subscriptions),
            web.delete("/push/channelSubscriptions", self.unsubscribe),
            web.get("/push/channels", self.list_channels),
            web.get("/push/notifications", self.notifications),
        ]

    # Publishing

    async def publish(self, request: web.Request) -> web.Response:
        caller = await self._admin(request)
        body = await read_body(request, self.settings.max_frame_size)
        if not isinstance(body, dict):
            raise AblyError(40000, 400, "Expected {recipient, notification, data}")
        payload = {k: v for k, v in body.items() if k != "recipient"}
        await self.push.publish(caller.app_id, body.get("recipient"), payload)
        return web.Response(status=204)

    async def notifications(self, request: web.Request) -> web.Response:
        """What the relay recorded, oldest first (filters: deviceId, clientId)."""
        caller = await self._admin(request)
        query = request.query
        items = await self.push.store.notifications(
            caller.app_id, device_id=query.get("deviceId"), client_id=query.get("clientId")
        )
        return self._page(request, "notifications", items)

    # Devices

    async def register(self, request: web.Request) -> web.Response:
        caller = await self._caller(request)
        if not (caller.admin or caller.may("push-subscribe")):
            raise AblyError.forbidden("Registering a device needs push-subscribe or push-admin")
        body = await read_body(request, self.settings.max_frame_size)
        device, token = await self.push.register(caller.app_id, body)
        return reply(request, public_device(device, token), status=201)

    async def save_device(self, request: web.Request) -> web.Response:
        caller = await self._caller(request)
        device_id = request.match_info["device_id"]
        self._own_device(caller, device_id)
        body = await read_body(request, self.settings.max_frame_size)
        return reply(request, await self.push.save(caller.app_id, device_id, body))

    async def update_device(self, request: web.Request) -> web.Response:
        caller = await self._caller(request)
        device_id = request.match_info["device_id"]
        self._own_device(caller, device_id)
        body = await read_body(request, self.settings.max_frame_size)
        return reply(request, await self.push.update(caller.app_id, device_id, body))

    async def get_device(self, request: web.Request) -> web.Response:
        caller = await self._caller(request)
        device_id = request.match_info["device_id"]
        self._own_device(caller, device_id)
        return reply(request, await self.push.device(caller.app_id, device_id))

    async def list_devices(self, request: web.Request) -> web.Response:
        caller = await self._admin(request)
        query = request.query
        items = await self.push.store.devices(
            caller.app_id, device_id=query.get("deviceId"), client_id=query.get("clientId")
        )
        return self._page(request, "deviceRegistrations", items)

    async def remove_device(self, request: web.Request) -> web.Response:
        caller = await self._caller(request)
        device_id = request.match_info["device_id"]
        self._own_device(caller, device_id)
        await self.push.store.remove_devices(caller.app_id, device_id=device_id)
        return web.Response(status=204)

    async def remove_devices(self, request: web.Request) -> web.Response:
        caller = await self._caller(request)
        device_id, client_id = request.query.get("deviceId"), request.query.get("clientId")
        if device_id is None and client_id is None:
            raise AblyError(40000, 400, "Removing devices needs a deviceId or clientId filter")
        if not caller.admin and (device_id is None or device_id != caller.device_id):
            raise AblyError.forbidden("Removing devices needs push-admin")
        await self.push.store.remove_devices(
            caller.app_id, device_id=device_id, client_id=client_id
        )
        return web.Response(status=204)

    # Channel subscriptions

    async def subscribe(self, request: web.Request) -> web.Response:
        caller = await self._caller(request)
        body = await read_body(request, self.settings.max_frame_size)
        channel, device_id, client_id = parse_subscription(body)
        self._own_subscription(caller, channel, device_id, client_id)
        if not self.push.channels.rules(caller.app_id, channel).push_enabled:
            # As on Ably: push subscriptions need a channel whose namespace enables push.
            raise AblyError.forbidden(f"Channel {channel!r} is not enabled for push notifications")
        if device_id:
            await self.push.device(caller.app_id, device_id)
        await self.push.store.subscribe(caller.app_id, channel, device_id, client_id)
        return reply(request, _subscription(channel, device_id, client_id), status=201)

    async def list_subscriptions(self, request: web.Request) -> web.Response:
        caller = await self._caller(request)
        query = request.query
        device_id, client_id = query.get("deviceId"), query.get("clientId")
        if not caller.admin and not (device_id is not None and device_id == caller.device_id):
            raise AblyError.forbidden("Listing subscriptions needs push-admin")
        rows = await self.push.store.subscriptions(
            caller.app_id,
            channel=query.get("channel"),
            device_id=device_id,
            client_id=client_id,
            any_of=query.get("concatFilters") == "true",
        )
        return self._page(request, "channelSubscriptions", [_subscription(*row) for row in rows])

    async def unsubscribe(self, request: web.Request) -> web.Response:
        caller = await self._caller(request)
        query = request.query
        channel = query.get("channel")
        device_id, client_id = query.get("deviceId"), query.get("clientId")
        if device_id is None and client_id is None and channel is None:
            raise AblyError(40000, 400, "Removing subscriptions needs a filter")
        if not caller.admin:
            self._own_subscription(caller, channel or "", device_id or "", client_id or "")
        await self.push.store.unsubscribe(
            caller.app_id, channel=channel, device_id=device_id, client_id=client_id
        )
        return web.Response(status=204)

    async def list_channels(self, request: web.Request) -> web.Response:
        caller = await self._admin(request)
        return self._page(request, "channels", await self.push.store.channels(caller.app_id))

    # Who may do what

    async def _caller(self, request: web.Request) -> _Caller:
        token = request.headers.get("X-Ably-DeviceToken")
        authorization = request.headers.get("Authorization")
        identity = None
        if authorization is not None and token is None:
            kind, credential = parse_authorization(authorization)
            if kind == "token" and credential.startswith(DEVICE_TOKEN_PREFIX):
                token = credential
                authorization = None
        if authorization is not None or request.query.get("key"):
            identity = self.auth.request_headers(
                authorization, request.headers.get("X-Ably-ClientId"), request.query.get("key")
            )
        if token is None:
            if identity is None:
                raise AblyError.unauthorized("No authentication credentials given")
            return _Caller(identity.app_id, identity, None)
        app_id = token.removeprefix(DEVICE_TOKEN_PREFIX).partition(".")[0]
        if identity is not None and identity.app_id != app_id:
            raise AblyError(40101, 401, "The device identity token belongs to another app")
        device = await self.push.store.device_by_token(app_id, token)
        if device is None:
            raise AblyError(40101, 401, "Invalid device identity token")
        return _Caller(app_id, identity, device["id"])

    async def _admin(self, request: web.Request) -> _Caller:
        caller = await self._caller(request)
        if not caller.admin:
            raise AblyError.forbidden("This operation needs the push-admin capability")
        return caller

    @staticmethod
    def _own_device(caller: _Caller, device_id: str) -> None:
        if not caller.admin and caller.device_id != device_id:
            raise AblyError.forbidden("Only push-admin or the device itself may do this")

    @staticmethod
    def _own_subscription(caller: _Caller, channel: str, device_id: str, client_id: str) -> None:
        if caller.admin:
            return
        own_client = (
            bool(client_id)
            and caller.identity is not None
            and (caller.identity.client_id == client_id)
        )
        own_device = bool(device_id) and caller.device_id == device_id
        if not (own_client or own_device) or not caller.may("push-subscribe", channel):
            raise AblyError.forbidden(
                f"Subscribing to push on {channel} needs push-admin, or push-subscribe for "
                "your own clientId or device"
            )

    def _page(self, request: web.Request, resource: str, items: list[Any]) -> web.Response:
        page = OffsetPage.parse(request.query)
        end = page.offset + page.limit
        links = page.links(resource, request.query, end < len(items))
        return reply(request, items[page.offset : end], headers={"Link": links})


def _subscription(channel: str, device_id: str, client_id: str) -> dict[str, str]:
    out = {"channel": channel}
    if device_id:
        out["deviceId"] = device_id
    if client_id:
        out["clientId"] = client_id
    return out
