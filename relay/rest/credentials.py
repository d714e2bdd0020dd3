"""REST authentication: Basic with an API key, or Bearer with a token."""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from relay.apps import Apps
from relay.auth.identity import Identity
from relay.auth.keys import authenticate_key
from relay.protocol.errors import AblyError

__all__ = ["authenticate_request"]


def authenticate_request(request: web.Request, apps: Apps) -> Identity:
    """The identity behind a request's Authorization header (or `key` query parameter)."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    client_id = _client_id_header(request)
    if scheme.lower() == "basic" and value:
        return authenticate_key(_b64(value), apps.lookup, client_id)
    if scheme.lower() == "bearer" and value:
        raise AblyError(40140, 401, "Token authentication is not available yet")
    key = request.query.get("key")
    if key:
        return authenticate_key(key, apps.lookup, client_id)
    raise AblyError.unauthorized("No authentication credentials given")


def _client_id_header(request: web.Request) -> str | None:
    """A Basic-auth client declares its clientId in X-Ably-ClientId, base64-encoded."""
    raw = request.headers.get("X-Ably-ClientId")
    if raw is None:
        return None
    client_id = _b64(raw)
    if not client_id or client_id == "*":
        raise AblyError.invalid_client_id("Invalid X-Ably-ClientId")
    return client_id


def _b64(value: str) -> str:
    try:
        return base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise AblyError.unauthorized("Malformed credentials") from None
