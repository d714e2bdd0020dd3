"""What `server.Relay` takes from a deployment's settings: TLS, and the apps of the file."""

from __future__ import annotations

import ssl

from channel_relay.apps import Apps
from channel_relay.auth.keys import ApiKey
from channel_relay.config import Settings
from channel_relay.store.base import DEFAULT_KEY_SETTING, Store

__all__ = [
    "DEFAULT_KEY_SETTING",
    "apply_app_rules",
    "configured_keys",
    "stored_default_key",
    "tls_context",
]


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context (TLS 1.2 or later) when a certificate is configured: https://
    and wss:// are then served on the one port."""
    if not settings.tls_cert or not settings.tls_key:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


def configured_keys(settings: Settings) -> list[ApiKey]:
    """Every key the settings declare: `keys` (full access) then each app's, in order."""
    keys = [ApiKey.parse(text) for text in settings.keys]
    for app in settings.apps:
        keys.extend(app.keys)
    return keys


async def stored_default_key(store: Store) -> ApiKey | None:
    """The default app's key of local development, if one was made in this database."""
    name = await store.get_setting(DEFAULT_KEY_SETTING)
    return next((key for key in await store.keys() if key.name == name), None)


def apply_app_rules(apps: Apps, settings: Settings) -> None:
    """The channel rules (namespaces, retention) of every app of the config file."""
    for app in settings.apps:
        apps.set_rules(app.app_id, app.default_rules, app.namespaces)
