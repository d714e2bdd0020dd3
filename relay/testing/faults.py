"""Fault injection from a test: the Python face of channel_relay.faults for one app.

    def test_retry_on_nack(relay_app):
        relay_app.faults.fail_publishes("orders", count=2, code=50000)
        ...  # the next two publishes on "orders" are NACKed (REST: error 500, code 50000)
        relay_app.faults.delay("orders", ms=500)       # deliveries arrive 500 ms late
        relay_app.faults.drop_connection(client_id="alice")  # the socket goes, the SDK resumes
        relay_app.faults.clear()

The same faults are reachable over HTTP on a `--sandbox` relay: POST/DELETE /sandbox/faults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from channel_relay.faults import fault_error
from channel_relay.protocol.errors import AblyError

if TYPE_CHECKING:
    from channel_relay.testing.server import RelayThread

__all__ = ["AppFaults"]


class AppFaults:
    def __init__(self, relay: RelayThread, app_id: str) -> None:
        self._relay = relay
        self.app_id = app_id

    def _server(self) -> Any:
        assert self._relay.relay is not None, "the relay is not running"
        return self._relay.relay

    def fail_publishes(
        self,
        channel: str,
        count: int = 1,
        code: int = 50000,
        status: int | None = None,
        message: str | None = None,
    ) -> None:
        """The next `count` publishes on `channel` fail with `code` (realtime: NACK; REST: an
        error reply with `status`, by default the code's first three digits or 500)."""
        error = fault_error(code, status, message)
        faults = self._server().faults

        async def apply() -> None:
            faults.fail_publishes(self.app_id, channel, count, error)

        self._relay.run(apply())

    def delay(self, channel: str, ms: float) -> None:
        """Hold every delivery on `channel` for `ms` milliseconds (0 ends the delay)."""
        faults = self._server().faults

        async def apply() -> None:
            faults.delay_deliveries(self.app_id, channel, ms)

        self._relay.run(apply())

    def drop_connection(
        self,
        connection_id: str | None = None,
        client_id: str | None = None,
        code: int | None = None,
    ) -> list[str]:
        """Drop the app's live sockets with that connectionId and/or clientId (all of them when
        neither is given): abruptly, or with DISCONNECTED carrying `code`. The SDK reconnects
        and resumes. Returns the connectionIds dropped."""
        error: AblyError | None = None if code is None else fault_error(code)
        sandbox = self._server().sandbox
        return self._relay.run(
            sandbox.drop_connections(
                self.app_id, connection_id=connection_id, client_id=client_id, error=error
            )
        )

    def clear(self, channel: str | None = None) -> None:
        """End the app's publish failures and delays (on one channel, or everywhere)."""
        faults = self._server().faults

        async def apply() -> None:
            faults.clear(self.app_id, channel)

        self._relay.run(apply())
