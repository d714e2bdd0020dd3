"""Testing support shipped with the relay: the pytest plugin, an in-process relay, test apps
and fault injection. See README.md, "Pytest plugin"."""

from channel_relay.testing.app import DEFAULT_SPEC, SandboxApp, create_app
from channel_relay.testing.faults import AppFaults
from channel_relay.testing.server import RelayThread

__all__ = ["DEFAULT_SPEC", "AppFaults", "RelayThread", "SandboxApp", "create_app"]
