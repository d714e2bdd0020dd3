"""API keys: "APPID.KEYID:SECRET", the credential every app starts with."""

from __future__ import annotations

import hmac
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass

from channel_relay.auth.capability import ALL, Capability
from channel_relay.auth.identity import Identity
from channel_relay.protocol.errors import AblyError

__all__ = ["ApiKey", "KeyLookup", "authenticate_key"]

_ID_ALPHABET = string.ascii_letters + string.digits + "-_"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An app's API key: the public name "APPID.KEYID", the secret, and what it may do."""

    app_id: str
    key_id: str
    secret: str
    capability: Capability = ALL

    @property
    def name(self) -> str:
        """The public half, "APPID.KEYID", as used in token requests and JWT `kid`."""
        return f"{self.app_id}.{self.key_id}"

    def __str__(self) -> str:
        return f"{self.name}:{self.secret}"

    @classmethod
    def parse(cls, text: str, capability: Capability = ALL) -> ApiKey:
        """Split "APPID.KEYID:SECRET"; AblyError 40101 when it is not of that shape."""
        name, sep, secret = text.partition(":")
        app_id, dot, key_id = name.partition(".")
        if not (sep and dot and app_id and key_id and secret) or "." in key_id:
            raise AblyError(40101, 401, "Invalid key format: expected APPID.KEYID:SECRET")
        return cls(app_id, key_id, secret, capability)

    @classmethod
    def generate(cls, app_id: str, capability: Capability = ALL) -> ApiKey:
        """A fresh key with a random 6-character id and a 256-bit secret (no "." in either)."""
        key_id = "".join(secrets.choice(_ID_ALPHABET[:-2]) for _ in range(6))
        secret = secrets.token_urlsafe(32).replace(".", "_")
        return cls(app_id, key_id, secret, capability)


KeyLookup = Callable[[str], ApiKey | None]
"""Finds a key by its name ("APPID.KEYID"), or None."""


def authenticate_key(text: str, lookup: KeyLookup, client_id: str | None = None) -> Identity:
    """Verify a full API key against the known keys.

    Raises AblyError 40101/401 for a malformed key or a wrong secret, and 40400/401 for a key
    name the relay does not know (what Ably's service answers: ably/specification
    uts/rest/integration/auth.md, "invalid-credentials-rejected"). `client_id` is taken as
    given; validate it first (relay.auth.credentials.authenticate does).
    """
    given = ApiKey.parse(text)
    known = lookup(given.name)
    if known is None:
        raise AblyError(40400, 401, f"No key found with name {given.name}")
    if not hmac.compare_digest(known.secret.encode(), given.secret.encode()):
        raise AblyError(40101, 401, "Invalid credentials")
    return Identity(
        app_id=known.app_id,
        key_name=known.name,
        capability=known.capability,
        client_id=client_id,
        method="basic",
    )
