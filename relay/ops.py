"""Routes for operators: GET /healthz, GET /readyz and GET /metrics.

- /healthz answers 200 while the process serves HTTP at all (a liveness probe: restart if not).
- /readyz answers 200 only when the relay accepts connections and its database takes a write
  (a tiny write through the store's writer, so a full disk, a lost volume or a stuck writer all
  show), 503 with the reason otherwise, and 503 from the moment a shutdown begins, so a load
  balancer stops sending new clients before the relay hands the connected ones over. A write
  that succeeded stands for 30 s: probes in between make none (a probe every second must not
  cost a durable write, an fsync, every second); after a failed one, every probe writes again,
  so recovery shows at once. Publishes failing count too, whatever the probe says (a small row
  can fit where a message does not, channel_relay.store.health): from a commit that failed for
  the engine's reasons, every probe writes a row as large as a message, and the relay is ready
  again once that write or a publish as large as the ones that failed commits. On PostgreSQL, a
  node whose LISTEN connection is lost is not ready until it listens again (it cannot hear the
  other nodes' commits).
- /metrics is the Prometheus text format (channel_relay.metrics).

None of them needs a key: expose the port to monitoring, not to the internet at large, or
filter these paths at the proxy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from aiohttp import web

from channel_relay.metrics import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from channel_relay.server import Relay

__all__ = ["OpsApi"]

log = logging.getLogger(__name__)

# A readiness write slower than this means the relay is not ready (a probe's own timeout is
# usually 1 s or more).
_READY_WRITE_TIMEOUT = 2.0
# Seconds a successful readiness write stands for.
_WRITE_CHECK_INTERVAL = 30.0


class OpsApi:
    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        # When (monotonic) the last readiness write succeeded.
        self._written_at: float | None = None

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/healthz", self.healthz),
            web.get("/readyz", self.readyz),
            web.get("/metrics", self.metrics),
        ]

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(self, request: web.Request) -> web.Response:
        relay = self.relay
        if not relay.accepting:
            return _not_ready("shutting down")
        if relay.cluster is not None and not relay.cluster.listening:
            return _not_ready("not listening for the other nodes' commits (database unreachable)")
        health = relay.store.health
        commits_failing = health.failure
        if commits_failing is not None:
            failure = await self._write_check(relay.settings.max_message_size)
            if failure is not None:
                return _not_ready(f"publishes are failing: {commits_failing}")
            health.recovered()
            self._written_at = time.monotonic()
        written = self._written_at
        if written is None or time.monotonic() - written >= _WRITE_CHECK_INTERVAL:
            self._written_at = None
            failure = await self._write_check()
            if failure is not None:
                return _not_ready(failure)
            self._written_at = time.monotonic()
        if not relay.accepting:
            return _not_ready("shutting down")
        return web.json_response({"status": "ready"})

    async def _write_check(self, size: int = 0) -> str | None:
        try:
            async with asyncio.timeout(_READY_WRITE_TIMEOUT):
                await self.relay.store.ping(size)
        except TimeoutError:
            return f"database write took over {_READY_WRITE_TIMEOUT} s"
        except Exception as exc:
            log.warning("readiness check: database write failed: %s", exc)
            return f"database write failed: {exc}"
        return None

    async def metrics(self, request: web.Request) -> web.Response:
        relay = self.relay
        metrics = relay.metrics
        metrics.connections.set(relay.realtime.open_sockets)
        metrics.retained_connections.set(len(relay.realtime.connections))
        metrics.channels.set(len(relay.channels))
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )


def _not_ready(reason: str) -> web.Response:
    return web.json_response({"status": "not ready", "reason": reason}, status=503)
