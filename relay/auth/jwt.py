"""Ably JWTs: tokens an app's auth server signs itself with a key secret (HS256).

The header names the key (``kid`` = "APPID.KEYID"); the claims are ``iat`` and ``exp`` (seconds),
``x-ably-capability`` (a JSON string), and optionally ``x-ably-clientId`` and
``x-ably-revocation-key`` (ably/docs ``auth/token/jwt.mdx`` and ``auth/revocation.mdx``).

An "embedded token" JWT instead carries an Ably token (native or JWT) under ``x-ably-token``,
in its header or claims, and is signed with the app's own secret, which the relay does not
know: the enclosed token is what is verified (:func:`embedded_token`, used by
relay.auth.credentials).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt as pyjwt

from channel_relay.auth.capability import Capability
from channel_relay.auth.identity import Identity
from channel_relay.auth.keys import KeyLookup
from channel_relay.auth.revocation import RevocationRegistry
from channel_relay.protocol.errors import AblyError

__all__ = [
    "CLOCK_SKEW_MS",
    "MAX_JWT_LENGTH",
    "EmbeddedToken",
    "embedded_token",
    "is_jwt",
    "verify_jwt",
]

MAX_JWT_LENGTH = 8 * 1024
"""Longer JWTs are refused unread: Ably's docs bound a JWT by HTTP header limits, ~8 KB."""

CLOCK_SKEW_MS = 2 * 60 * 1000
"""How far in the future ``iat``/``nbf`` may be (the signer's clock may run ahead of ours);
the same margin Ably allows a TokenRequest timestamp. ``exp`` gets none: the SDK renews."""

# The only algorithm an Ably JWT uses. Listing it alone is what stops "none" and algorithm
# swaps (an RS256/ES256 header verified with the HMAC secret as if it were a public key).
_ALGORITHMS = ["HS256"]
_DECODE_OPTIONS: Any = {
    "verify_signature": True,
    # Time claims are checked below against the caller's now_ms, not pyjwt's own clock.
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "require": [],
}


def _invalid(message: str) -> AblyError:
    return AblyError(40144, 401, f"Invalid JWT: {message}")


def is_jwt(token: str) -> bool:
    """Whether `token` has a JWT's shape (three dot-separated parts); native tokens have four."""
    return token.count(".") == 2


def _header(token: str, max_length: int) -> dict[str, Any]:
    if not isinstance(token, str) or len(token) > max_length:
        raise _invalid(f"longer than {max_length} characters")
    if not is_jwt(token):
        raise _invalid("not three dot-separated parts")
    try:
        header = pyjwt.get_unverified_header(token)
    except pyjwt.PyJWTError:
        raise _invalid("malformed header") from None
    if "crit" in header:
        # Critical extensions (RFC 7515 4.1.11) change how the token must be read; we know none.
        raise _invalid("critical header extensions are not supported")
    return header


def _number(claims: Mapping[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(f"claim {name!r} must be a number of seconds")
    return value


def verify_jwt(
    token: str,
    lookup: KeyLookup,
    *,
    now_ms: int,
    revocations: RevocationRegistry | None = None,
    clock_skew_ms: int = CLOCK_SKEW_MS,
    max_length: int = MAX_JWT_LENGTH,
) -> Identity:
    """Verify an Ably JWT and return who it identifies.

    Raises (status 401 unless noted): 40144 for anything invalid - over `max_length`,
    malformed, an algorithm other than HS256 (``none`` included), a missing or unknown ``kid``,
    a bad signature, missing or non-numeric ``iat``/``exp``, ``iat`` or ``nbf`` further than
    `clock_skew_ms` ahead, ``exp`` before ``iat``; 40142 when expired; 40141 when revoked;
    40160 when the capability shares nothing with the key's; 40000/400 for an invalid
    ``x-ably-capability``; 40012/400 for a clientId that is not a non-empty string.
    A JWT without ``x-ably-capability`` gets the key's capability, as a TokenRequest without one
    does (spec TK2b).
    """
    header = _header(token, max_length)
    if header.get("alg") not in _ALGORITHMS:
        raise _invalid(f"algorithm {header.get('alg')!r} is not accepted; use HS256")
    kid = header.get("kid")
    key = lookup(kid) if isinstance(kid, str) and kid else None
    if key is None:
        raise _invalid("kid does not name a key of this relay")
    try:
        claims = pyjwt.decode(token, key.secret, algorithms=_ALGORITHMS, options=_DECODE_OPTIONS)
    except pyjwt.InvalidSignatureError:
        raise _invalid("signature verification failed") from None
    except pyjwt.PyJWTError:
        raise _invalid("malformed") from None
    iat = _number(claims, "iat", required=True)
    exp = _number(claims, "exp", required=True)
    nbf = _number(claims, "nbf", required=False)
    assert iat is not None and exp is not None
    issued, expires = int(iat * 1000), int(exp * 1000)
    if expires < issued:
        raise _invalid("exp is before iat")
    if now_ms >= expires:
        raise AblyError(40142, 401, "Token expired")
    if issued > now_ms + clock_skew_ms or (nbf is not None and nbf * 1000 > now_ms + clock_skew_ms):
        raise _invalid("not valid yet (iat/nbf in the future)")

    raw_capability = claims.get("x-ably-capability")
    if raw_capability is None:
        capability = key.capability
    elif isinstance(raw_capability, str | Mapping):
        capability = Capability.parse(raw_capability).within(key.capability)
    else:
        raise _invalid("x-ably-capability must be a JSON string")
    client_id = claims.get("x-ably-clientId")
    if client_id is not None and (not isinstance(client_id, str) or not client_id):
        raise AblyError(40012, 400, "x-ably-clientId must be a non-empty string")
    revocation_key = claims.get("x-ably-revocation-key")
    if revocation_key is not None and not isinstance(revocation_key, str):
        raise _invalid("x-ably-revocation-key must be a string")

    identity = Identity(
        app_id=key.app_id,
        key_name=key.name,
        capability=capability,
        client_id=client_id,
        expires=expires,
        issued=issued,
        method="token",
        revocation_key=revocation_key,
    )
    if revocations is not None:
        revocations.check(identity, now_ms)
    return identity


@dataclass(frozen=True, slots=True)
class EmbeddedToken:
    """An Ably token found inside an app's own JWT; `expires` is the outer ``exp`` in ms."""

    token: str
    expires: int | None


def embedded_token(token: str, *, max_length: int = MAX_JWT_LENGTH) -> EmbeddedToken | None:
    """The Ably token a JWT wraps under ``x-ably-token`` (header first, then claims), or None.

    The outer signature is not checked (it is made with a secret the relay does not know); the
    caller must verify the returned token and refuse it if it expires before the outer ``exp``.
    Raises 40144 for a malformed JWT or one with ``alg`` "none".
    """
    header = _header(token, max_length)
    try:
        claims = pyjwt.decode(token, options={"verify_signature": False})
    except pyjwt.PyJWTError:
        raise _invalid("malformed claims") from None
    inner = header.get("x-ably-token", claims.get("x-ably-token"))
    if inner is None:
        return None
    if not isinstance(inner, str) or not inner:
        raise _invalid("x-ably-token must be a token string")
    if str(header.get("alg", "none")).lower() == "none":
        raise _invalid("unsigned JWTs are not accepted")
    exp = _number(claims, "exp", required=False)
    return EmbeddedToken(token=inner, expires=None if exp is None else int(exp * 1000))
