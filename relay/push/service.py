"""The push service of the relay: registrations, subscriptions, and publishing to devices.

A notification goes to each device the recipient names (a deviceId, every device of a
clientId, or the devices and clientIds subscribed to a channel whose message carries
`extras.push`). Each is recorded as a push service would have received it; for a device whose
transport is `ablyChannel` it is also published on that channel as `__ably_push__` (data: the
payload as JSON), as Ably does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from typing import Any

from channel_relay.channels.channel import Channel
from channel_relay.channels.registry import ChannelRegistry
from channel_relay.protocol.errors import AblyError
from channel_relay.push.devices import parse_device
from channel_relay.push.render import render
from channel_relay.push.store import PushStore

__all__ = ["DEVICE_TOKEN_PREFIX", "Push"]

log = logging.getLogger(__name__)

# Device identity tokens are opaque to clients: "dit.<appId>.<random>". The prefix tells them
# apart from Ably tokens, and the app is named because a device may present only its token.
DEVICE_TOKEN_PREFIX = "dit."
_PUSH_MESSAGE = "__ably_push__"


class Push:
    def __init__(self, store: PushStore, channels: ChannelRegistry) -> None:
        self.store = store
        self.channels = channels
        self._tasks: set[asyncio.Task[None]] = set()

    async def settled(self) -> None:
        """Wait until the notifications of every channel message published so far are sent."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # Devices

    async def register(self, app_id: str, body: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """Activation (`POST /push/deviceRegistrations`): store the device and give it an
        identity token, with which it may later update itself and its subscriptions."""
        device = parse_device(body)
        token = f"{DEVICE_TOKEN_PREFIX}{app_id}.{secrets.token_urlsafe(24)}"
        await self.store.save_device(app_id, device, token)
        now = int(time.time() * 1000)
        return device, {"token": token, "issued": now, "expires": 0, "capability": ""}

    async def save(self, app_id: str, device_id: str, body: Any) -> dict[str, Any]:
        """Create or replace a device (`PUT`, push-admin)."""
        device = parse_device(body, device_id)
        await self.store.save_device(app_id, device, None)
        return device

    async def update(self, app_id: str, device_id: str, body: Any) -> dict[str, Any]:
        """`PATCH`: change a registered device's recipient, clientId or metadata."""
        current = await self.device(app_id, device_id)
        if not isinstance(body, dict):
            raise AblyError(40000, 400, "Expected a DeviceDetails object")
        merged = {**current, **{k: v for k, v in body.items() if k != "push"}}
        if isinstance(body.get("push"), dict) and "recipient" in body["push"]:
            merged["push"] = {**current["push"], "recipient": body["push"]["recipient"]}
        return await self.save(app_id, device_id, merged)

    async def device(self, app_id: str, device_id: str) -> dict[str, Any]:
        found = await self.store.device(app_id, device_id)
        if found is None:
            raise AblyError.not_found(f"No device registered with id {device_id!r}")
        return found[0]

    # Publishing

    async def publish(self, app_id: str, recipient: Any, payload: dict[str, Any]) -> int:
        """`POST /push/publish`: notify a deviceId, a clientId's devices, or a push transport
        addressed directly; how many notifications were sent."""
        if not isinstance(recipient, dict) or not recipient:
            raise AblyError(40000, 400, "A push publish needs a recipient")
        if not payload.get("notification") and not payload.get("data"):
            raise AblyError(40000, 400, "A push publish needs a notification or data")
        if isinstance(recipient.get("deviceId"), str):
            devices = await self.store.devices(app_id, device_id=recipient["deviceId"])
        elif isinstance(recipient.get("clientId"), str):
            devices = await self.store.devices(app_id, client_id=recipient["clientId"])
        elif isinstance(recipient.get("transportType"), str):
            devices = [{"id": "", "push": {"recipient": recipient}}]
        else:
            raise AblyError(40000, 400, "A recipient names a deviceId, a clientId or a transport")
        await self._notify(app_id, devices, payload, None)
        return len(devices)

    def channel_published(self, channel: Channel, messages: list[dict[str, Any]]) -> None:
        """Called once messages of `channel` are committed: those carrying `extras.push` go to
        the channel's push subscribers, when its rules enable push."""
        if not channel.rules.push_enabled:
            return
        # Every committed publish comes here: a loop, not a comprehension's frame, for the
        # common message without extras.
        pushed: list[dict[str, Any]] = []
        for message in messages:
            extras = message.get("extras")
            if extras and isinstance(extras.get("push"), dict):
                pushed.append(message)
        if not pushed:
            return
        task = asyncio.get_running_loop().create_task(self._channel_push(channel, pushed))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _channel_push(self, channel: Channel, messages: list[dict[str, Any]]) -> None:
        try:
            app_id = channel.app_id
            subscriptions = await self.store.subscriptions(app_id, channel=channel.name)
            devices: dict[str, dict[str, Any]] = {}
            for _, device_id, client_id in subscriptions:
                found = await self.store.devices(
                    app_id, device_id=device_id or None, client_id=client_id or None
                )
                devices.update((device["id"], device) for device in found)
            for message in messages:
                await self._notify(
                    app_id, list(devices.values()), message["extras"]["push"], channel.name
                )
        except Exception:
            log.exception("push notifications for %s failed", channel.name)

    async def _notify(
        self,
        app_id: str,
        devices: list[dict[str, Any]],
        payload: dict[str, Any],
        channel: str | None,
    ) -> None:
        now = int(time.time() * 1000)
        records = []
        for device in devices:
            recipient = device["push"]["recipient"]
            record: dict[str, Any] = {
                "deviceId": device["id"],
                "timestamp": now,
                "recipient": recipient,
                "payload": payload,
                "body": render(recipient.get("transportType", ""), payload),
            }
            if device.get("clientId") is not None:
                record["clientId"] = device["clientId"]
            if channel is not None:
                record["channel"] = channel
            records.append((device["id"], device.get("clientId"), now, record))
        await self.store.record(app_id, records)
        for device in devices:
            recipient = device["push"]["recipient"]
            if recipient.get("transportType") == "ablyChannel":
                await self._to_channel(app_id, recipient.get("channel"), payload)

    async def _to_channel(self, app_id: str, name: Any, payload: dict[str, Any]) -> None:
        if not isinstance(name, str) or not name:
            return
        channel = await self.channels.get(app_id, name)

        def done(_: Any, error: AblyError | None) -> None:
            if error is not None:
                log.warning("push to channel %s failed: %s", name, error.message)

        channel.publish([{"name": _PUSH_MESSAGE, "data": json.dumps(payload)}], done)
