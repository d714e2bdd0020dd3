"""What each push service would be sent for an Ably push payload, as Ably maps it:

| Ably field | FCM | APNs | Web Push |
| notification.title, .body | notification.title, .body | aps.alert.title, .body | same as FCM |
| notification.icon | notification.icon | (dropped) | notification.icon |
| notification.sound | notification.sound | aps.sound | (dropped) |
| notification.collapseKey | collapse_key | apns-collapse-id header | (dropped) |
| data | data | custom top-level keys | data |

then the payload's own `fcm`, `apns` or `web` object is merged over the result, extending and
overriding it for that service. Pure functions.
"""

from __future__ import annotations

from typing import Any

__all__ = ["render"]

_SERVICE = {"fcm": "fcm", "gcm": "fcm", "apns": "apns", "web": "web"}


def render(transport: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The body the push service of `transport` would receive (`ablyChannel`: the payload)."""
    service = _SERVICE.get(transport)
    if service is None:
        return payload
    notification = payload.get("notification") or {}
    data = payload.get("data") or {}
    body: dict[str, Any]
    if service == "apns":
        alert = {k: notification[k] for k in ("title", "body") if k in notification}
        aps: dict[str, Any] = {"alert": alert} if alert else {}
        if "sound" in notification:
            aps["sound"] = notification["sound"]
        body = {**data, "aps": aps}
        if "collapseKey" in notification:
            body["headers"] = {"apns-collapse-id": notification["collapseKey"]}
    else:
        kept = ("title", "body", "icon", "sound") if service == "fcm" else ("title", "body", "icon")
        shown = {k: notification[k] for k in kept if k in notification}
        body = {}
        if shown:
            body["notification"] = shown
        if data:
            body["data"] = data
        if service == "fcm" and "collapseKey" in notification:
            body["collapse_key"] = notification["collapseKey"]
    override = payload.get(service)
    return _merged(body, override) if isinstance(override, dict) else body


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out
