"""Helpers for the unit tests of credentials, importable as `auth_support`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from channel_relay.auth.revocation import RevocationRegistry


def in_force(
    registry: RevocationRegistry, key_name: str, targets: Sequence[object], **params: Any
) -> dict[str, Any]:
    """Revoke as the relay does once the store has committed: plan, then apply."""
    result, revocations = registry.plan(key_name, targets, **params)
    registry.apply(revocations, params["now_ms"])
    return result
