"""Ably capabilities: which operations a credential may perform on which channels."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relay.protocol.errors import AblyError

__all__ = ["ALL", "Capability"]


@dataclass(frozen=True, slots=True)
class Capability:
    """A parsed capability: resource pattern -> the operations granted on it."""

    grants: Mapping[str, frozenset[str]]

    @classmethod
    def parse(cls, value: str | Mapping[str, Any]) -> Capability:
        """Parse a capability from a JSON string or a mapping; AblyError 40000 if malformed."""
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise AblyError(40000, 400, "Capability is not valid JSON") from None
        if not isinstance(value, Mapping) or not value:
            raise AblyError(40000, 400, "Capability must be a non-empty JSON object")
        grants: dict[str, frozenset[str]] = {}
        for resource, ops in value.items():
            if not isinstance(ops, list) or not all(isinstance(op, str) for op in ops):
                raise AblyError(40000, 400, f"Capability for {resource!r} must be a list of ops")
            grants[resource] = frozenset(ops)
        return cls(grants)

    def to_json(self) -> str:
        return json.dumps({r: sorted(ops) for r, ops in self.grants.items()}, separators=(",", ":"))

    def allows(self, channel: str, op: str) -> bool:
        """Whether `op` is granted on `channel` by any matching resource."""
        return any(
            (op in ops or "*" in ops) and _matches(resource, channel)
            for resource, ops in self.grants.items()
        )


def _matches(pattern: str, channel: str) -> bool:
    if pattern in ("*", "[*]*") or pattern == channel:
        return True
    return pattern.endswith("*") and channel.startswith(pattern[:-1])


ALL = Capability({"*": frozenset({"*"})})
