"""The apps (tenants) the relay serves: their keys and channel rules, in memory for every lookup."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from channel_relay.auth.keys import ApiKey
from channel_relay.channels.rules import ChannelRules, namespace_of

__all__ = ["Apps"]

# An app without explicit rules enables mutable messages everywhere, so the quick start works
# with AI Transport out of the box.
_OPEN = ChannelRules()


class Apps:
    """Keys by name and rules by app; an app exists while it has a key."""

    def __init__(self) -> None:
        self._keys: dict[str, ApiKey] = {}
        self._rules: dict[str, tuple[ChannelRules, dict[str, ChannelRules]]] = {}

    def add(self, keys: Iterable[ApiKey]) -> None:
        for key in keys:
            self._keys[key.name] = key

    def remove(self, app_id: str) -> None:
        """Forget an app: its keys stop authenticating and its rules are dropped."""
        for name in [n for n, k in self._keys.items() if k.app_id == app_id]:
            del self._keys[name]
        self._rules.pop(app_id, None)

    def lookup(self, key_name: str) -> ApiKey | None:
        return self._keys.get(key_name)

    def keys(self) -> list[ApiKey]:
        return list(self._keys.values())

    def keys_of(self, app_id: str) -> list[ApiKey]:
        """The app's keys by name; empty for an app the relay does not have."""
        return sorted((k for k in self._keys.values() if k.app_id == app_id), key=lambda k: k.name)

    def set_rules(
        self, app_id: str, default: ChannelRules, namespaces: Mapping[str, ChannelRules]
    ) -> None:
        """Rules for the app's channels: per namespace, and `default` for the rest."""
        self._rules[app_id] = (default, dict(namespaces))

    def rules(self, app_id: str, channel: str) -> ChannelRules:
        default, namespaces = self._rules.get(app_id, (_OPEN, {}))
        namespace = namespace_of(channel)
        if namespace is not None and namespace in namespaces:
            return namespaces[namespace]
        return default
