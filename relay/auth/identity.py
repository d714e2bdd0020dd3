"""Who a connection or request is: the app it belongs to, its key, clientId and capability."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from channel_relay.auth.capability import Capability

__all__ = ["AuthMethod", "Identity"]

AuthMethod = Literal["basic", "token"]
""""basic" for an API key, "token" for a native Ably token or an Ably JWT."""


@dataclass(frozen=True, slots=True)
class Identity:
    """The verified result of authenticating a credential.

    `client_id` is None for an anonymous connection and "*" for a wildcard token that may act
    as any clientId; `expires` and `issued` are in ms since the epoch (None for a key, which
    never expires). `method` says whether a key or a token was presented: an anonymous key may
    publish with any clientId, an anonymous token may not, and revokeTokens needs a key.
    `revocation_key` is a JWT's ``x-ably-revocation-key`` claim, if any.
    """

    app_id: str
    key_name: str
    capability: Capability
    client_id: str | None = None
    expires: int | None = None
    issued: int | None = None
    method: AuthMethod = "basic"
    revocation_key: str | None = None
