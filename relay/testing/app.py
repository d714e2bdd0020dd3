"""A test app on the in-process relay: its keys and the client options of each SDK for it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from channel_relay.auth.authenticator import now_ms
from channel_relay.auth.capability import Capability
from channel_relay.auth.tokens import issue_token
from channel_relay.provisioning import AppSpec, ProvisionedApp
from channel_relay.store.fixtures import FixtureSummary, import_fixture
from channel_relay.testing.faults import AppFaults

if TYPE_CHECKING:
    from channel_relay.testing.server import RelayThread

__all__ = ["DEFAULT_SPEC", "SandboxApp", "create_app"]

# A key that may do everything, and mutable messages and push on every channel (as on the
# relay's own default app), so AI Transport, message updates and push work without a namespace.
DEFAULT_SPEC: dict[str, Any] = {
    "keys": [{}],
    "namespaces": [],
    "defaultRules": {"mutableMessages": True, "persisted": True, "pushEnabled": True},
}


@dataclass
class SandboxApp:
    """One app of the test relay: `keys` in the order of its spec (`key` is the first)."""

    relay: RelayThread
    app_id: str
    keys: list[str]
    namespaces: list[dict[str, Any]]
    faults: AppFaults = field(init=False)
    dropped: bool = False

    def __post_init__(self) -> None:
        self.faults = AppFaults(self.relay, self.app_id)

    @property
    def key(self) -> str:
        return self.keys[0]

    @property
    def port(self) -> int:
        return self.relay.port

    @property
    def url(self) -> str:
        return self.relay.url

    def ably_js_options(self, key_index: int = 0, **extra: Any) -> dict[str, Any]:
        """Options for `new Ably.Realtime(...)` / `new Ably.Rest(...)` in node (JSON-able:
        pass them to a node script). Fallback hosts and connectivity checks stay local."""
        host, port = self.relay.host, self.port
        return {
            "key": self.keys[key_index],
            "endpoint": host,
            "port": port,
            "tls": False,
            "fallbackHosts": [],
            "disableConnectivityCheck": True,
            "connectivityCheckUrl": f"http://{host}:{port}/time",
            "wsConnectivityCheckUrl": f"ws://{host}:{port}/",
            **extra,
        }

    def ably_python_options(self, key_index: int = 0, **extra: Any) -> dict[str, Any]:
        """Keyword arguments for ably-python's `AblyRest(**options)`.

        ably-python (3.1.4) refuses Basic auth over plain HTTP (40103), so these carry a token
        (one hour, the key's capability) minted for the key instead of the key itself.
        """
        return {
            "token": self.token(key_index),
            "endpoint": self.relay.host,
            "port": self.port,
            "tls": False,
            **extra,
        }

    def ably_python_realtime_options(self, key_index: int = 0, **extra: Any) -> dict[str, Any]:
        """Keyword arguments for ably-python's `AblyRealtime(**options)`: its realtime client
        (3.1.4) ignores `port` but takes one in `realtime_host`. Its REST-backed calls
        (history) do not reach the port: use an `AblyRest(**ably_python_options())`."""
        return {
            "token": self.token(key_index),
            "realtime_host": f"{self.relay.host}:{self.port}",
            "tls": False,
            **extra,
        }

    def client_options(self, key_index: int = 0) -> dict[str, str]:
        """What the project's thin client (`client/`) takes: {url, key}."""
        return {"url": self.url, "key": self.keys[key_index]}

    def token(
        self,
        key_index: int = 0,
        *,
        client_id: str | None = None,
        capability: dict[str, list[str]] | None = None,
        ttl_ms: int | None = None,
    ) -> str:
        """A native Ably token for one of the app's keys, minted without a request."""
        server = self.relay.relay
        assert server is not None, "the relay is not running"
        key = server.apps.lookup(self.keys[key_index].partition(":")[0])
        assert key is not None, f"app {self.app_id} has no key {key_index}"
        details = issue_token(
            key,
            now_ms=now_ms(),
            ttl=ttl_ms,
            capability=None if capability is None else Capability.parse(capability),
            client_id=client_id,
        )
        return details.token

    def push_notifications(
        self, device_id: str | None = None, client_id: str | None = None
    ) -> list[dict[str, Any]]:
        """The push notifications the relay recorded for this app's devices instead of handing
        them to APNs, FCM or web push, oldest first: each {deviceId, clientId, timestamp,
        recipient, payload, body (what that push service would have been sent, mapped as Ably
        maps it), channel (when a channel message's extras.push sent it)}. The same
        as `GET /push/notifications` (filters deviceId, clientId)."""
        server = self.relay.relay
        assert server is not None, "the relay is not running"
        return list(
            self.relay.run(
                server.push.store.notifications(
                    self.app_id, device_id=device_id, client_id=client_id
                )
            )
        )

    def load_fixture(self, path: str | os.PathLike[str]) -> FixtureSummary:
        """Load a fixture file (docs/fixtures.md; `relay export` writes them) into this app:
        every channel of the file, whichever app it came from, becomes this app's, with its
        messages, serials, versions and presence history. Load before the test uses them."""
        server = self.relay.relay
        assert server is not None, "the relay is not running"
        with open(path, encoding="utf-8") as lines:
            return self.relay.run(import_fixture(server.store, lines, into_app=self.app_id))

    def reset(self) -> None:
        """Empty the app (messages, presence, channels, stats, faults; live connections are
        closed) and keep its keys and rules; presence fixtures are entered again."""
        server = self.relay.relay
        assert server is not None, "the relay is not running"
        self.relay.run(server.sandbox.reset_app(self.app_id))

    def drop(self) -> None:
        """Delete the app, its keys and all its data (idempotent)."""
        if self.dropped or self.relay.relay is None:
            return
        self.relay.run(self.relay.relay.sandbox.delete_app(self.app_id))
        self.dropped = True


def create_app(relay: RelayThread, spec: dict[str, Any] | None = None) -> SandboxApp:
    """Provision an app on `relay` from a `post_apps`-shaped spec (default: DEFAULT_SPEC),
    through the same code as `POST /apps`."""
    server = relay.relay
    assert server is not None, "the relay is not running"
    parsed = AppSpec.parse(DEFAULT_SPEC if spec is None else spec)
    app: ProvisionedApp = relay.run(server.sandbox.create_app(parsed))
    return SandboxApp(
        relay,
        app.app_id,
        [str(k) for k in app.keys],
        app.to_dict(relay.host, relay.port, False)["namespaces"],
    )
