"""One entry point from a presented credential to an Identity, with Ably's clientId rules.

The realtime and REST layers call :func:`authenticate` with what the client sent (``key=`` or
``access_token=``/``accessToken=`` on the WebSocket URL, the ``Authorization`` header on REST,
read with :func:`parse_authorization`) and the requested clientId (the ``clientId`` connect
param, or the ``X-Ably-ClientId`` header read with :func:`decode_client_id_header`). Publishing
and presence then stamp the clientId :func:`message_client_id` returns.
"""

from __future__ import annotations

import base64
import binascii
from typing import Literal

from channel_relay.auth.identity import Identity
from channel_relay.auth.jwt import CLOCK_SKEW_MS, embedded_token, is_jwt, verify_jwt
from channel_relay.auth.keys import KeyLookup, authenticate_key
from channel_relay.auth.revocation import RevocationRegistry
from channel_relay.auth.tokens import verify_token
from channel_relay.protocol.errors import AblyError

__all__ = [
    "CredentialKind",
    "authenticate",
    "decode_client_id_header",
    "message_client_id",
    "parse_authorization",
    "verify_any_token",
]

CredentialKind = Literal["key", "token"]

_WILDCARD = "*"


def _check_requested_client_id(client_id: object) -> str | None:
    # The wildcard is reserved for what a token grants; a client may not ask for it (RSA7c).
    if client_id is None:
        return None
    if not isinstance(client_id, str) or not client_id or client_id == _WILDCARD:
        raise AblyError(40012, 400, "Invalid clientId: must be a non-empty string other than '*'")
    return client_id


def verify_any_token(
    token: str,
    lookup: KeyLookup,
    *,
    now_ms: int,
    revocations: RevocationRegistry | None = None,
    clock_skew_ms: int = CLOCK_SKEW_MS,
) -> Identity:
    """Verify a token string of any form: an Ably JWT, a JWT wrapping an Ably token, or native.

    A JWT has three dot-separated parts, a native token four. Errors are those of
    channel_relay.auth.jwt.verify_jwt and channel_relay.auth.tokens.verify_token; a wrapping JWT
    whose ``exp`` is later than its enclosed token's expiry is 40144, and one already expired is
    40142.
    """
    if not isinstance(token, str) or not token:
        raise AblyError(40101, 401, "No token given")
    if not is_jwt(token):
        return verify_token(token, lookup, now_ms=now_ms, revocations=revocations)
    wrapped = embedded_token(token)
    if wrapped is None:
        return verify_jwt(
            token, lookup, now_ms=now_ms, revocations=revocations, clock_skew_ms=clock_skew_ms
        )
    inner = wrapped.token
    if is_jwt(inner):
        if embedded_token(inner) is not None:
            raise AblyError(40144, 401, "Invalid JWT: embedded tokens cannot be nested")
        identity = verify_jwt(
            inner, lookup, now_ms=now_ms, revocations=revocations, clock_skew_ms=clock_skew_ms
        )
    else:
        identity = verify_token(inner, lookup, now_ms=now_ms, revocations=revocations)
    if wrapped.expires is not None:
        if now_ms >= wrapped.expires:
            raise AblyError(40142, 401, "Token expired")
        if identity.expires is not None and wrapped.expires > identity.expires:
            raise AblyError(40144, 401, "Invalid JWT: exp is later than the enclosed token's")
    return identity


def authenticate(
    credential: str,
    kind: CredentialKind,
    lookup: KeyLookup,
    *,
    client_id: str | None = None,
    now_ms: int,
    revocations: RevocationRegistry | None = None,
    clock_skew_ms: int = CLOCK_SKEW_MS,
) -> Identity:
    """Turn a key or a token into a verified Identity, applying the clientId rules.

    `kind` is "key" for "APPID.KEYID:SECRET" (``key=`` param, Basic auth) and "token" for a
    native token or JWT (``access_token``/``accessToken``, Bearer). `client_id` is the
    clientId the client asked for, if any:

    - it must be a non-empty string and not "*", else 40012/400;
    - with a key, it becomes the identity's clientId (the key holder is trusted);
    - with a token, it must equal the token's clientId (else 40102/401), unless the token's is
      the wildcard "*", in which case the identity takes the requested clientId; a token with
      no clientId may not take one (40102).

    Without a requested clientId the identity has the token's clientId ("*", a name, or None).
    Other errors: see relay.auth.keys.authenticate_key and :func:`verify_any_token`.
    """
    requested = _check_requested_client_id(client_id)
    if kind == "key":
        return authenticate_key(credential, lookup, client_id=requested)
    if kind != "token":
        raise ValueError(f"unknown credential kind {kind!r}")
    identity = verify_any_token(
        credential, lookup, now_ms=now_ms, revocations=revocations, clock_skew_ms=clock_skew_ms
    )
    if requested is None or requested == identity.client_id:
        return identity
    if identity.client_id == _WILDCARD:
        return _with_client_id(identity, requested)
    raise AblyError(
        40102,
        401,
        f"Incompatible credentials: clientId {requested!r} does not match the token's "
        f"{identity.client_id!r}",
    )


def _with_client_id(identity: Identity, client_id: str) -> Identity:
    return Identity(
        app_id=identity.app_id,
        key_name=identity.key_name,
        capability=identity.capability,
        client_id=client_id,
        expires=identity.expires,
        issued=identity.issued,
        method=identity.method,
        revocation_key=identity.revocation_key,
    )


def message_client_id(identity: Identity, claimed: object) -> str | None:
    """The clientId to stamp on a message or presence event published under `identity`.

    `claimed` is the clientId the message carries (None if absent). An identified connection
    stamps its own clientId and refuses any other; a wildcard token may publish as anyone (or
    nobody); an anonymous key connection may set any clientId, an anonymous token connection
    none (spec RSA7, RSA8f). Refusals are 40012/400; "*" and empty strings are never valid.
    """
    if claimed is not None and (not isinstance(claimed, str) or not claimed or claimed == "*"):
        raise AblyError(40012, 400, "Invalid clientId in message")
    own = identity.client_id
    if claimed is None:
        return None if own == _WILDCARD else own
    if own in (claimed, _WILDCARD) or (own is None and identity.method == "basic"):
        return claimed
    raise AblyError(
        40012, 400, f"Mismatched clientId {claimed!r}; this connection is {own or 'anonymous'}"
    )


def _b64decode_text(value: str) -> str | None:
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    return text if text and text.isprintable() else None


def parse_authorization(header: str) -> tuple[CredentialKind, str]:
    """Read a REST ``Authorization`` header into ("key", key) or ("token", token).

    ``Basic base64(APPID.KEYID:SECRET)`` gives the key. ``Bearer`` carries either
    base64(token), as Ably SDKs send it, or the raw token: a raw token always contains dots,
    which base64 never does. AblyError 40101/401 for another scheme or an undecodable value.
    """
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    scheme = scheme.lower()
    if scheme == "basic":
        key = _b64decode_text(value)
        if key is None or ":" not in key:
            raise AblyError(40101, 401, "Invalid Basic credentials")
        return "key", key
    if scheme == "bearer" and value:
        if "." in value:
            return "token", value
        token = _b64decode_text(value)
        if token is None:
            raise AblyError(40101, 401, "Invalid Bearer token")
        return "token", token
    raise AblyError(40101, 401, "Authorization must be Basic or Bearer")


def decode_client_id_header(value: str) -> str:
    """The clientId from an ``X-Ably-ClientId`` header (base64 of the UTF-8 id); 40012 if bad."""
    client_id = _b64decode_text(value.strip())
    if client_id is None:
        raise AblyError(40012, 400, "Invalid X-Ably-ClientId header")
    return client_id
