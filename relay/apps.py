"""The apps (tenants) the relay serves and their keys, held in memory for every lookup."""

from __future__ import annotations

from collections.abc import Iterable

from relay.auth.keys import ApiKey

__all__ = ["Apps"]


class Apps:
    """Keys by name; an app exists while it has a key."""

    def __init__(self) -> None:
        self._keys: dict[str, ApiKey] = {}

    def add(self, keys: Iterable[ApiKey]) -> None:
        for key in keys:
            self._keys[key.name] = key

    def lookup(self, key_name: str) -> ApiKey | None:
        return self._keys.get(key_name)

    def keys(self) -> list[ApiKey]:
        return list(self._keys.values())
