"""Native Ably tokens: signed TokenRequests in, stateless self-verifying tokens out.

A client (or the app's auth server, with ``createTokenRequest``) signs a TokenRequest with the
key secret; ``POST /keys/{keyName}/requestToken`` exchanges it for TokenDetails via
:func:`request_token`. The token string carries its own claims and an HMAC made with a key
derived from the key secret, so any relay node that knows the key verifies it
(:func:`verify_token`) without shared state::

    APPID.KEYID.<base64url JSON claims>.<base64url HMAC-SHA256>

It has four dot-separated parts (a key name has exactly one dot), so it is never confused with
a three-part JWT. The claims are readable by whoever holds the token, as a JWT's are.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from channel_relay.auth.capability import Capability
from channel_relay.auth.identity import Identity
from channel_relay.auth.keys import ApiKey, KeyLookup
from channel_relay.auth.revocation import RevocationRegistry
from channel_relay.protocol.errors import AblyError

__all__ = [
    "DEFAULT_TTL_MS",
    "MAX_TOKEN_LENGTH",
    "MAX_TTL_MS",
    "TIMESTAMP_WINDOW_MS",
    "NonceStore",
    "TokenDetails",
    "TokenRequest",
    "create_token_request",
    "issue_token",
    "request_token",
    "verify_token",
]

DEFAULT_TTL_MS = 60 * 60 * 1000
"""A token lives 60 minutes when the request names no ttl (spec TK2a)."""

MAX_TTL_MS = 24 * 60 * 60 * 1000
"""The longest ttl Ably grants an access token; longer is refused with 40003 (ably docs
``auth/token``, "Token TTL limits")."""

TIMESTAMP_WINDOW_MS = 2 * 60 * 1000
"""How far a TokenRequest's timestamp may be from the relay's clock either way; outside it the
request is refused with 40104. Ably's margin is 2 minutes (Paddy Byers in ably/docs#142)."""

MAX_TOKEN_LENGTH = 64 * 1024
"""Longer token strings are refused unread (native tokens may carry large capabilities)."""

_TOKEN_VERSION = 1
_SIGNING_LABEL = b"channel-relay native token v1"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    # Strict: a character outside the alphabet is an error, not silently skipped.
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def _bad_request(message: str) -> AblyError:
    return AblyError(40000, 400, message)


def _as_int(value: Any, name: str) -> int | None:
    """An integer from a JSON number or a decimal string; None when absent."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise _bad_request(f"TokenRequest {name} must be a number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isdecimal():
        return int(value)
    raise _bad_request(f"TokenRequest {name} must be an integer")


def _as_str(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad_request(f"TokenRequest {name} must be a string")
    return value


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """A signed request for a token (spec TE1-TE5); times in ms since the epoch.

    `capability` is the JSON text exactly as signed: the mac covers those bytes, so it is
    never re-serialised before checking.
    """

    key_name: str
    timestamp: int
    nonce: str
    mac: str
    ttl: int | None = None
    capability: str | None = None
    client_id: str | None = None

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> TokenRequest:
        """Read the JSON/msgpack body an SDK posts; AblyError 40000/400 if a field is malformed."""
        if not isinstance(body, Mapping):
            raise _bad_request("TokenRequest must be an object")
        key_name = _as_str(body.get("keyName"), "keyName")
        nonce = _as_str(body.get("nonce"), "nonce")
        mac = _as_str(body.get("mac"), "mac")
        timestamp = _as_int(body.get("timestamp"), "timestamp")
        if not key_name or not nonce or not mac or timestamp is None:
            raise _bad_request("TokenRequest needs keyName, timestamp, nonce and mac")
        capability = body.get("capability")
        if isinstance(capability, Mapping):
            # A mac is computed over the text; an object has no single text form to check.
            raise _bad_request("TokenRequest capability must be a JSON string")
        return cls(
            key_name=key_name,
            timestamp=timestamp,
            nonce=nonce,
            mac=mac,
            ttl=_as_int(body.get("ttl"), "ttl"),
            capability=_as_str(capability, "capability") or None,
            client_id=_as_str(body.get("clientId"), "clientId"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The wire form (absent optional fields omitted)."""
        out: dict[str, Any] = {"keyName": self.key_name}
        if self.ttl is not None:
            out["ttl"] = self.ttl
        if self.capability is not None:
            out["capability"] = self.capability
        if self.client_id is not None:
            out["clientId"] = self.client_id
        out.update(timestamp=self.timestamp, nonce=self.nonce, mac=self.mac)
        return out

    def signed_text(self) -> str:
        """The text the mac covers: each field and a newline, '' for an absent field."""
        fields = (
            self.key_name,
            "" if self.ttl is None else str(self.ttl),
            self.capability or "",
            self.client_id or "",
            str(self.timestamp),
            self.nonce,
        )
        return "".join(f"{f}\n" for f in fields)

    def mac_is_valid(self, secret: str) -> bool:
        """Whether `mac` is base64(HMAC-SHA256(secret, signed_text())); constant-time compare."""
        expected = _mac_bytes(secret, self.signed_text())
        try:
            given = base64.b64decode(self.mac + "=" * (-len(self.mac) % 4), altchars=b"-_")
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(expected, given)


def _mac_bytes(secret: str, text: str) -> bytes:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()


def create_token_request(
    key: ApiKey,
    *,
    now_ms: int,
    ttl: int | None = None,
    capability: str | Capability | None = None,
    client_id: str | None = None,
    nonce: str | None = None,
) -> TokenRequest:
    """Sign a TokenRequest with `key`, as an SDK's ``auth.createTokenRequest`` does."""
    if isinstance(capability, Capability):
        capability = capability.to_json()
    unsigned = TokenRequest(
        key_name=key.name,
        timestamp=now_ms,
        nonce=nonce or secrets.token_hex(16),
        mac="",
        ttl=ttl,
        capability=capability,
        client_id=client_id,
    )
    mac = base64.b64encode(_mac_bytes(key.secret, unsigned.signed_text())).decode("ascii")
    return TokenRequest(
        key_name=unsigned.key_name,
        timestamp=unsigned.timestamp,
        nonce=unsigned.nonce,
        mac=mac,
        ttl=ttl,
        capability=capability,
        client_id=client_id,
    )


@dataclass(frozen=True, slots=True)
class TokenDetails:
    """What requestToken returns (spec TD1-TD6); `capability` is the granted JSON text."""

    token: str
    key_name: str
    issued: int
    expires: int
    capability: str
    client_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "token": self.token,
            "keyName": self.key_name,
            "issued": self.issued,
            "expires": self.expires,
            "capability": self.capability,
        }
        if self.client_id is not None:
            out["clientId"] = self.client_id
        return out


class NonceStore(Protocol):
    """Where TokenRequest nonces are held: the store, shared by every node (40105 on replay)."""

    async def claim_nonce(
        self, key_name: str, nonce: str, expires_ms: int, now_ms: int
    ) -> bool: ...


def _validate_client_id(client_id: object) -> str | None:
    if client_id is None:
        return None
    if not isinstance(client_id, str) or not client_id:
        raise AblyError(40012, 400, "clientId must be a non-empty string")
    return client_id


def issue_token(
    key: ApiKey,
    *,
    now_ms: int,
    ttl: int | None = None,
    capability: Capability | None = None,
    client_id: str | None = None,
) -> TokenDetails:
    """Mint a token for `key`, already authorised by the caller (a checked TokenRequest or Basic).

    `capability` defaults to the key's and is intersected with it (40160 if nothing is left).
    `ttl` in ms defaults to 60 minutes; above 24 hours or below 1 ms it is 40003/400.
    `client_id` may be "*" (the token may act as any clientId); empty is 40012.
    """
    if ttl is None:
        ttl = DEFAULT_TTL_MS
    if ttl <= 0 or ttl > MAX_TTL_MS:
        raise AblyError(40003, 400, f"ttl must be between 1 and {MAX_TTL_MS} ms")
    client_id = _validate_client_id(client_id)
    granted = key.capability if capability is None else capability.within(key.capability)
    cap_json = granted.to_json()
    claims: dict[str, Any] = {
        "v": _TOKEN_VERSION,
        "iat": now_ms,
        "exp": now_ms + ttl,
        "cap": cap_json,
        "jti": secrets.token_urlsafe(12),
    }
    if client_id is not None:
        claims["cid"] = client_id
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    body = f"{key.name}.{payload}"
    token = f"{body}.{_b64url(_token_signature(key.secret, body))}"
    return TokenDetails(
        token=token,
        key_name=key.name,
        issued=now_ms,
        expires=now_ms + ttl,
        capability=cap_json,
        client_id=client_id,
    )


def _token_signature(secret: str, body: str) -> bytes:
    # A key derived for this one purpose: a token signature can never double as a TokenRequest
    # mac or a JWT signature made with the raw secret over the same bytes.
    signing_key = hmac.new(secret.encode(), _SIGNING_LABEL, hashlib.sha256).digest()
    return hmac.new(signing_key, body.encode(), hashlib.sha256).digest()


async def request_token(
    body: TokenRequest | Mapping[str, Any],
    lookup: KeyLookup,
    *,
    now_ms: int,
    nonces: NonceStore,
    key_name: str | None = None,
) -> TokenDetails:
    """Exchange a signed TokenRequest for TokenDetails (the requestToken endpoint).

    `key_name` is the ``{keyName}`` of the URL path, when there is one: it must match the body.
    Checks, in order, each with the code Ably sends:
    malformed body 40000/400; path and body key differ 40101/401; unknown key 40400/401;
    bad mac 40101/401; timestamp more than TIMESTAMP_WINDOW_MS from `now_ms` 40104/401;
    nonce already used 40105/401; ttl out of range 40003/400; invalid capability 40000/400;
    nothing left after intersecting with the key's capability 40160/401; bad clientId 40012/400.
    The mac is checked before the nonce is claimed, so a forger cannot burn real nonces. A
    nonce is held, with its request's timestamp, until that timestamp leaves the window: after
    that the timestamp check refuses a replay by itself.
    """
    request = body if isinstance(body, TokenRequest) else TokenRequest.from_dict(body)
    if key_name is not None and key_name != request.key_name:
        raise AblyError(40101, 401, "TokenRequest keyName does not match the request path")
    key = lookup(request.key_name)
    if key is None:
        raise AblyError(40400, 401, f"No key found with name {request.key_name}")
    if not request.mac_is_valid(key.secret):
        raise AblyError(40101, 401, "Invalid mac: TokenRequest was not signed by this key")
    if abs(now_ms - request.timestamp) > TIMESTAMP_WINDOW_MS:
        raise AblyError(40104, 401, "Timestamp not current")
    expires = request.timestamp + TIMESTAMP_WINDOW_MS
    # A replay is the same request again: Ably accepts a nonce reused with another timestamp
    # (ably-python's test_request_token_with_duplicate_nonce relies on it).
    claimed = f"{request.nonce}@{request.timestamp}"
    if not await nonces.claim_nonce(request.key_name, claimed, expires, now_ms):
        raise AblyError(40105, 401, "Nonce value replayed")
    capability = None if request.capability is None else Capability.parse(request.capability)
    return issue_token(
        key,
        now_ms=now_ms,
        ttl=request.ttl,
        capability=capability,
        client_id=request.client_id,
    )


def _unparseable() -> AblyError:
    # Ably answers a string that is no token at all as bad credentials, not as a token error:
    # the SDK fails the connection instead of renewing into the same garbage (ably-python's
    # realtime auth tests, run against Ably, expect 40101).
    return AblyError(40101, 401, "Invalid credentials: not an Ably token")


def _unrecognised() -> AblyError:
    return AblyError(40143, 401, "Token not recognised")


def verify_token(
    token: str,
    lookup: KeyLookup,
    *,
    now_ms: int,
    revocations: RevocationRegistry | None = None,
) -> Identity:
    """Verify a native token string and return who it identifies.

    Raises (all status 401): 40101 when the string is not a token of this form or is over
    MAX_TOKEN_LENGTH; token errors, which make an SDK renew its token: 40143 when its key is
    unknown or its signature does not verify (forged or tampered); 40142 when expired; 40141
    when revoked in `revocations`; 40160 when the key's capability no longer grants anything
    the token had (the key's current capability always bounds the token's).
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise _unparseable()
    body, _, signature = token.rpartition(".")
    key_name, _, payload = body.rpartition(".")
    app_id, _, key_id = key_name.partition(".")
    if not (app_id and key_id and payload and signature) or "." in key_id:
        raise _unparseable()
    key = lookup(key_name)
    if key is None:
        raise _unrecognised()
    try:
        given = _unb64url(signature)
    except (binascii.Error, ValueError):
        raise _unparseable() from None
    if not hmac.compare_digest(_token_signature(key.secret, body), given):
        raise _unrecognised()
    try:
        claims = json.loads(_unb64url(payload))
        issued, expires, cap_json = claims["iat"], claims["exp"], claims["cap"]
        client_id = claims.get("cid")
        if claims.get("v") != _TOKEN_VERSION or not all(
            isinstance(t, int) for t in (issued, expires)
        ):
            raise ValueError("bad claims")
        capability = Capability.parse(cap_json)
    except (ValueError, KeyError, TypeError, AttributeError, AblyError):
        raise _unparseable() from None
    if now_ms >= expires:
        raise AblyError(40142, 401, "Token expired")
    identity = Identity(
        app_id=key.app_id,
        key_name=key.name,
        capability=capability.within(key.capability),
        client_id=client_id,
        expires=expires,
        issued=issued,
        method="token",
    )
    if revocations is not None:
        revocations.check(identity, now_ms)
    return identity
