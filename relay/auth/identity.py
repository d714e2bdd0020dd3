"""Who a connection or request is: the app it belongs to, its key, clientId and capability."""

from __future__ import annotations

from dataclasses import dataclass

from relay.auth.capability import Capability

__all__ = ["Identity"]


@dataclass(frozen=True, slots=True)
class Identity:
    """The verified result of authenticating a credential.

    `client_id` is None for an anonymous key connection and "*" for a wildcard token that may act
    as any clientId; `expires` is in ms since the epoch (None for a key, which never expires).
    """

    app_id: str
    key_name: str
    capability: Capability
    client_id: str | None = None
    expires: int | None = None
