"""Validating what clients send to the push admin API: device details and subscriptions."""

from __future__ import annotations

from typing import Any

from channel_relay.protocol.errors import AblyError

__all__ = ["PLATFORMS", "TRANSPORTS", "parse_device", "parse_subscription", "public_device"]

PLATFORMS = frozenset({"ios", "android", "browser"})
FORM_FACTORS = frozenset({"phone", "tablet", "desktop", "tv", "watch", "car", "embedded", "other"})
# gcm is FCM's former name, still sent by older clients; ablyChannel is Ably's own transport
# (the notification is published on a channel), which is how the SDKs test push.
TRANSPORTS = frozenset({"apns", "fcm", "gcm", "web", "ablyChannel"})


def _bad(message: str) -> AblyError:
    return AblyError(40000, 400, message)


def parse_device(body: Any, device_id: str | None = None) -> dict[str, Any]:
    """A DeviceDetails as stored: id, clientId, deviceSecret, platform, formFactor, metadata,
    push {recipient, state}; 40000 for anything Ably refuses. `device_id` is the id named in
    the path, which a body must agree with."""
    if not isinstance(body, dict):
        raise _bad("Expected a DeviceDetails object")
    device_id = device_id if device_id is not None else body.get("id")
    if not isinstance(device_id, str) or not device_id:
        raise _bad("A device needs an id")
    if body.get("id") not in (None, device_id):
        raise _bad("The device id in the body differs from the one in the path")
    platform = body.get("platform")
    if platform not in PLATFORMS:
        raise _bad(f"Invalid platform {platform!r}: expected one of {sorted(PLATFORMS)}")
    form_factor = body.get("formFactor")
    if form_factor not in FORM_FACTORS:
        raise _bad(f"Invalid formFactor {form_factor!r}: expected one of {sorted(FORM_FACTORS)}")
    push = body.get("push")
    recipient = push.get("recipient") if isinstance(push, dict) else None
    if not isinstance(recipient, dict) or recipient.get("transportType") not in TRANSPORTS:
        raise _bad("A device needs push.recipient with a transportType Ably supports")
    client_id = body.get("clientId")
    if client_id is not None and not isinstance(client_id, str):
        raise _bad("clientId must be a string")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise _bad("metadata must be an object")
    device: dict[str, Any] = {
        "id": device_id,
        "platform": platform,
        "formFactor": form_factor,
        "metadata": metadata or {},
        "push": {"recipient": recipient, "state": "ACTIVE"},
    }
    if client_id is not None:
        device["clientId"] = client_id
    if isinstance(body.get("deviceSecret"), str):
        device["deviceSecret"] = body["deviceSecret"]
    return device


def public_device(device: dict[str, Any], token: dict[str, Any] | None = None) -> dict[str, Any]:
    """A device as the API answers it (with the identity token, on registration only)."""
    out = dict(device)
    if token is not None:
        out["deviceIdentityToken"] = token
    return out


def parse_subscription(body: Any) -> tuple[str, str, str]:
    """(channel, deviceId, clientId) of a PushChannelSubscription, '' for the absent one:
    exactly one of deviceId and clientId names the subscriber."""
    if not isinstance(body, dict):
        raise _bad("Expected a PushChannelSubscription object")
    channel = body.get("channel")
    if not isinstance(channel, str) or not channel:
        raise _bad("A subscription needs a channel")
    device_id = body.get("deviceId") or ""
    client_id = body.get("clientId") or ""
    if not isinstance(device_id, str) or not isinstance(client_id, str):
        raise _bad("deviceId and clientId must be strings")
    if bool(device_id) == bool(client_id):
        raise _bad("A subscription names either a deviceId or a clientId")
    return channel, device_id, client_id
