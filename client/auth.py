"""Credentials: an API key, a fixed token or JWT, or a callback that mints tokens.

A connection asks `Auth` for the query parameters of its WebSocket URL and REST asks it for an
Authorization header. With a callback (or a key and `use_token_auth`), tokens are renewed when
the relay says a token is no longer good (40140-40149) and shortly before a known expiry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import inspect
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import aiohttp

from channel_relay.client.errors import AblyError, error_from_info

__all__ = ["Auth", "AuthCallback", "TokenDetails", "request_token", "sign_token_request"]

TokenDetails: TypeAlias = dict[str, Any]
# Returns a token string, a TokenDetails dict ({token, expires, ...}) or a JWT string.
AuthCallback: TypeAlias = Callable[[], Awaitable[str | TokenDetails] | str | TokenDetails]


def sign_token_request(
    key: str,
    *,
    ttl: int | None = None,
    capability: dict[str, list[str]] | str | None = None,
    client_id: str | None = None,
) -> dict[str, Any]:
    """A signed native TokenRequest for `key` (HMAC-SHA256 over the canonical fields)."""
    key_name, _, secret = key.partition(":")
    cap = (
        json.dumps(capability, separators=(",", ":"))
        if isinstance(capability, dict)
        else capability
    )
    timestamp = int(time.time() * 1000)
    nonce = secrets.token_hex(16)
    fields = [key_name, str(ttl or ""), cap or "", client_id or "", str(timestamp), nonce]
    mac = hmac.new(secret.encode(), ("\n".join(fields) + "\n").encode(), hashlib.sha256)
    out: dict[str, Any] = {
        "keyName": key_name,
        "timestamp": timestamp,
        "nonce": nonce,
        "mac": base64.b64encode(mac.digest()).decode(),
    }
    if ttl:
        out["ttl"] = ttl
    if cap:
        out["capability"] = cap
    if client_id:
        out["clientId"] = client_id
    return out


async def request_token(
    base_url: str,
    key: str,
    *,
    ttl: int | None = None,
    capability: dict[str, list[str]] | str | None = None,
    client_id: str | None = None,
) -> TokenDetails:
    """POST /keys/{keyName}/requestToken with a signed request; returns TokenDetails.

    Raises AblyError with the relay's code (40101 bad key, 40160 capability, ...).
    """
    body = sign_token_request(key, ttl=ttl, capability=capability, client_id=client_id)
    url = f"{base_url}/keys/{body['keyName']}/requestToken"
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as resp:
        payload = await resp.json(content_type=None)
        if resp.status >= 300:
            raise error_from_info((payload or {}).get("error") or {"code": resp.status * 100})
        return payload


class Auth:
    """The credentials of one client. Give exactly one of `key`, `token` (a native token or a
    JWT), `token_details` or `auth_callback`; `use_token_auth=True` with a key makes the client
    mint its own short-lived tokens from the relay instead of sending the key.
    """

    def __init__(
        self,
        *,
        key: str | None = None,
        token: str | None = None,
        token_details: TokenDetails | None = None,
        auth_callback: AuthCallback | None = None,
        client_id: str | None = None,
        use_token_auth: bool = False,
        token_params: dict[str, Any] | None = None,
    ) -> None:
        if not (key or token or token_details or auth_callback):
            raise AblyError(40106, 401, "No authentication method: give a key, token or callback")
        self.key = key
        self.client_id = client_id
        self.auth_callback = auth_callback
        self.use_token_auth = use_token_auth and key is not None
        self.token_params = token_params or {}
        self.base_url = ""  # set by the client: where requestToken goes
        self._details: TokenDetails | None = None
        if token_details:
            self._details = dict(token_details)
        elif token:
            self._details = {"token": token}

    @property
    def uses_token(self) -> bool:
        return self.key is None or self.use_token_auth

    @property
    def renewable(self) -> bool:
        """Whether a new token can be had (a callback, or a key to sign requests with)."""
        return self.auth_callback is not None or self.use_token_auth

    @property
    def token(self) -> str | None:
        return self._details.get("token") if self._details else None

    @property
    def expires(self) -> float | None:
        """Expiry of the current token in epoch seconds, when known (TokenDetails or JWT)."""
        if not self._details:
            return None
        if self._details.get("expires"):
            return float(self._details["expires"]) / 1000
        return _jwt_exp(self._details.get("token"))

    async def authorize(self, force: bool = False) -> str | None:
        """The token to use (renewed when `force` or when none is held); None for key auth.

        Raises AblyError 40171 when the token must be renewed and there is no way to do so.
        """
        if not self.uses_token:
            return None
        if self._details and not force:
            return self.token
        if self.auth_callback is not None:
            value = self.auth_callback()
            if inspect.isawaitable(value):
                value = await value
            self._details = {"token": value} if isinstance(value, str) else dict(value)
        elif self.use_token_auth and self.key:
            params = {"client_id": self.client_id, **self.token_params}
            self._details = await request_token(self.base_url, self.key, **params)
        elif force:
            raise AblyError(40171, 403, "Token expired and no means to renew it was given")
        return self.token

    def ws_params(self) -> dict[str, str]:
        """Query parameters naming the credentials (call authorize() first for tokens)."""
        if not self.uses_token:
            assert self.key is not None
            return {"key": self.key}
        token = self.token
        if token is None:
            raise AblyError(40106, 401, "No token: call authorize() first")
        return {"access_token": token}

    def rest_headers(self) -> dict[str, str]:
        """Authorization (and X-Ably-ClientId for Basic) headers for a REST request."""
        if not self.uses_token:
            assert self.key is not None
            headers = {"Authorization": "Basic " + base64.b64encode(self.key.encode()).decode()}
            if self.client_id:
                headers["X-Ably-ClientId"] = base64.b64encode(self.client_id.encode()).decode()
            return headers
        token = self.token or ""
        return {"Authorization": "Bearer " + base64.b64encode(token.encode()).decode()}


def _jwt_exp(token: str | None) -> float | None:
    # A JWT carries its own expiry; reading it (unverified) lets us renew before it lapses.
    if not token or token.count(".") != 2:
        return None
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        exp = claims.get("exp")
        return float(exp) if isinstance(exp, int | float) else None
    except (ValueError, TypeError):
        return None
