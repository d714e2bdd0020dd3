"""Helpers for the client tests, importable by name (pytest puts this folder on sys.path)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from channel_relay.client import Realtime
from channel_relay.server import Relay

__all__ = ["MakeClient", "abort_socket"]

# The `make_client` fixture (conftest.py): make_client(client_id=None, connect=True, **options).
MakeClient = Callable[..., Awaitable[Realtime]]


def abort_socket(relay: Relay, client: Realtime) -> None:
    """Drop `client`'s socket from the relay's side, as a network failure would."""
    connection = relay.realtime.connections[client.connection.id or ""]
    assert connection.writer is not None
    connection.writer.abort()
