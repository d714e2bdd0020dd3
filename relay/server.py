"""The relay: one aiohttp application serving the realtime endpoint and the REST API on one port."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from channel_relay.apps import Apps
from channel_relay.auth.authenticator import Authenticator
from channel_relay.auth.keys import ApiKey
from channel_relay.channels.annotations import Annotations
from channel_relay.channels.channel import Channel
from channel_relay.channels.cluster import ClusterFeed
from channel_relay.channels.registry import ChannelRegistry
from channel_relay.config import Settings
from channel_relay.deployment import (
    DEFAULT_KEY_SETTING,
    apply_app_rules,
    configured_keys,
    stored_default_key,
    tls_context,
)
from channel_relay.faults import Faults
from channel_relay.inspector import InspectorApi
from channel_relay.loop_lag import LoopLagProbe
from channel_relay.metrics import Metrics
from channel_relay.ops import OpsApi
from channel_relay.protocol.errors import AblyError
from channel_relay.provisioning import Sandbox
from channel_relay.push.service import Push
from channel_relay.push.store import PUSH_SCHEMA, PushStore
from channel_relay.realtime.endpoint import RealtimeEndpoint
from channel_relay.realtime.frames import corked
from channel_relay.rest.admin import AdminApi
from channel_relay.rest.annotations import AnnotationsApi
from channel_relay.rest.negotiate import error_response
from channel_relay.rest.push import PushApi
from channel_relay.rest.routes import RestApi
from channel_relay.rest.sandbox import SandboxApi
from channel_relay.rest.stats import StatsApi
from channel_relay.rest.unparseable import EnvelopeRunner
from channel_relay.retention import Retention
from channel_relay.store.annotations import AnnotationStore, PgAnnotations, SqliteAnnotations
from channel_relay.store.base import Store
from channel_relay.store.live_stats import LiveStatsTable, PgLiveStats, SqliteLiveStats
from channel_relay.store.pg_side import PgSideTables
from channel_relay.store.postgres import PostgresStore
from channel_relay.store.preflight import check_database
from channel_relay.store.side import SideDatabase
from channel_relay.store.sqlite import SqliteStore
from channel_relay.usage import LiveStats

__all__ = ["Relay"]

log = logging.getLogger(__name__)

# Seconds aiohttp waits for handlers still running once clients were handed over.
_SHUTDOWN_TIMEOUT = 2.0
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
StoreHook = Callable[[Store], Awaitable[None]]
_METRICS = web.AppKey("metrics", Metrics)
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "*",
    "Access-Control-Expose-Headers": "Link, X-Ably-Errorcode, X-Ably-Errormessage",
}


class Relay:
    """A running relay. `start()` opens the store and binds; `stop()` undoes both."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: Store
        # With PostgreSQL, what the other nodes commit is heard here (channels.cluster).
        self._cluster_store: PostgresStore | None = None
        self.cluster: ClusterFeed | None = None
        # The side tables (push, annotations, live stats) are in the same engine as the log.
        push_store: PushStore
        annotation_store: AnnotationStore
        stats_table: LiveStatsTable
        if settings.store is not None:
            self.store = self._cluster_store = PostgresStore(settings.store)
            tables = PgSideTables(self._cluster_store)
            push_store = PushStore(tables)
            annotation_store = PgAnnotations(tables)
            stats_table = PgLiveStats(tables)
        else:
            sqlite = SqliteStore(settings.db_path)
            self.store = sqlite
            push_store = PushStore(SideDatabase(sqlite.path, PUSH_SCHEMA, "relay-push"))
            annotation_store = SqliteAnnotations(sqlite.path)
            stats_table = SqliteLiveStats(sqlite.path)
        self.apps = Apps()
        # Fault injection exists on sandbox relays only (channel_relay.faults).
        self.faults = Faults()
        self.channels = ChannelRegistry(
            self.store, self.apps.rules, self.faults if settings.sandbox else None
        )
        self.authenticator = Authenticator(self.apps.lookup, self.store)
        self.realtime = RealtimeEndpoint(settings, self.channels, self.authenticator)
        self.authenticator.on_revoked = self.realtime.enforce_revocations
        # One node id for what this process records in the store (connections, members).
        self.store.node_id = self.channels.node_id = self.realtime.node_id
        self.rest = RestApi(
            settings,
            self.channels,
            self.authenticator,
            self.realtime.enforce_revocations,
            self.realtime.connection_id_for_key,
        )
        self.push = Push(push_store, self.channels)
        self.annotations = Annotations(annotation_store)
        self.channels.annotations = self.annotations
        self.live_stats = LiveStats(stats_table, settings.stats_flush_interval)
        self.channels.on_published = self._published
        self.channels.on_presence = lambda channel, events, fan_out: self.live_stats.presence(
            channel.app_id, events, fan_out
        )
        self.realtime.on_socket = self.live_stats.connection
        self.sandbox = Sandbox(
            self.store,
            self.apps,
            self.channels,
            self.realtime,
            self.faults,
            (
                self.push.store.delete_app,
                self.annotations.store.delete_app,
                self.live_stats.delete_app,
            ),
        )
        self.admin = AdminApi(self.apps, self.sandbox, self.authenticator)
        # Operations (metrics.py, ops.py, retention.py): a registry of this relay's own.
        self.metrics = Metrics()
        self.channels.metrics = self.metrics
        self.store.on_commit = self.metrics.store_commit
        self.loop_lag = LoopLagProbe(self.metrics.loop_lag)
        # What one commit delivers to a socket leaves in one write.
        self.store.completions = corked
        self.retention = Retention(
            self.store,
            self.apps.rules,
            self.channels,
            interval=settings.retention_interval,
            batch=settings.retention_batch,
            metrics=self.metrics,
        )
        # True from the end of start() until stop() begins: /readyz answers 200 only then.
        self.accepting = False
        self.port = settings.port
        self.default_key = ""
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = self.settings.host
        scheme = "https" if self.settings.tls_cert else "http"
        return f"{scheme}://{'[' + host + ']' if ':' in host else host}:{self.port}"

    def application(self) -> web.Application:
        app = web.Application(middlewares=[_errors], client_max_size=self.settings.max_frame_size)
        app[_METRICS] = self.metrics
        app.router.add_get("/", self._root)
        app.router.add_routes(OpsApi(self).routes())
        # Before the REST routes: their GET /channels/{name} would take annotation paths.
        app.router.add_routes(
            AnnotationsApi(
                self.settings, self.channels, self.annotations, self.authenticator
            ).routes()
        )
        app.router.add_routes(self.rest.routes())
        app.router.add_routes(PushApi(self.settings, self.push, self.authenticator).routes())
        app.router.add_routes(StatsApi(self.store, self.live_stats, self.authenticator).routes())
        if self.settings.inspector:
            app.router.add_routes(InspectorApi(self.authenticator, self.realtime).routes())
        app.router.add_routes(self.admin.routes())
        if self.settings.sandbox:
            sandbox = SandboxApi(self.settings, self.sandbox, self.authenticator)
            app.router.add_routes(sandbox.routes())
        return app

    async def start(self, prepare: StoreHook | None = None) -> None:
        """Open the store, load keys and rules, bind. `prepare` is given the open store before
        anything is read from it (`relay serve --import` loads its fixture there). A database
        that cannot serve (missing or unwritable directory, read-only, corrupt) raises
        StoreOpenError before anything starts."""
        if self.settings.store is None and self.settings.db_path is not None:
            await asyncio.to_thread(check_database, self.settings.db_path)
        await self.store.open()
        self.loop_lag.start()
        try:
            if prepare is not None:
                await prepare(self.store)
            await self.push.store.open()
            await self.annotations.store.open()
            await self.live_stats.open()
            await self._load_keys()
            apply_app_rules(self.apps, self.settings)
            await self.sandbox.restore()
            await self.authenticator.start()
            self.channels.start()
            if self._cluster_store is not None:
                self.cluster = ClusterFeed(self._cluster_store, self.channels)
                self.cluster.on_revocations = self.authenticator.catch_up_revocations
                await self.cluster.start()
            await self.realtime.start()
            ssl_context = tls_context(self.settings)
            self._runner = EnvelopeRunner(
                self.application(), access_log=None, shutdown_timeout=_SHUTDOWN_TIMEOUT
            )
            await self._runner.setup()
            reuse_port = self.settings.workers > 1
            for sock in _bind(self.settings.host, self.settings.port, reuse_port):
                self.port = sock.getsockname()[1]
                await web.SockSite(self._runner, sock, ssl_context=ssl_context).start()
            self.retention.start()
            self.accepting = True
        except BaseException:
            await self.stop()
            raise

    async def stop(self, finish: StoreHook | None = None) -> None:
        """Shut down gracefully, within settings.drain_timeout: stop accepting (listening
        sockets close, /readyz turns 503), stop acting on frames, make everything accepted
        durable and ACKed, send DISCONNECTED (80003) to every client so it resumes against
        the next relay, then close the sockets and the store (its writer drains its queue).
        `finish` is given the store once everything is durable, before it closes
        (`relay serve --export-on-exit`)."""
        self.accepting = False
        await self.loop_lag.stop()
        await self.retention.stop()
        if self._runner is not None:
            for site in list(self._runner.sites):
                await site.stop()
        try:
            async with asyncio.timeout(self.settings.drain_timeout):
                await self.realtime.stop(flush=self.store.flush if self._runner else None)
        except TimeoutError:
            log.warning("shutdown: clients not handed over within %ss", self.settings.drain_timeout)
        self.faults.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.channels.stop()
        if self.cluster is not None:
            await self.cluster.stop()
        await self.push.close()
        await self.push.store.close()
        await self.annotations.store.close()
        await self.live_stats.close()
        try:
            if finish is not None:
                await finish(self.store)
        finally:
            await self.store.close()

    def _published(self, channel: Channel, messages: list[dict[str, Any]]) -> None:
        """Every committed publish: push notifications for its extras.push, and live stats."""
        self.push.channel_published(channel, messages)
        self.live_stats.published(channel.app_id, channel.name, messages, len(channel.subscribers))

    async def _load_keys(self) -> None:
        if self.settings.keys or self.settings.apps:
            keys = configured_keys(self.settings)
        else:
            keys = await self._default_keys()
        self.apps.add(await self.store.keys())
        self.apps.add(keys)
        self.default_key = str(keys[0])
        self.admin.admin_key_name = keys[0].name

    async def _default_keys(self) -> list[ApiKey]:
        """The default app's key: made once, kept in the database, the same at every start."""
        stored = await stored_default_key(self.store)
        if stored is not None:
            return [stored]
        key = ApiKey.generate(ApiKey.generate("x").key_id)
        await self.store.add_keys([key])
        await self.store.set_setting(DEFAULT_KEY_SETTING, key.name)
        log.info("default app %s created; its key is kept in the database", key.app_id)
        return [key]

    async def _root(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self.realtime.handle(request)
        return web.json_response({"service": "channel-relay", "status": "ok"})


def _bind(host: str, port: int, reuse_port: bool = False) -> list[socket.socket]:
    """Listening sockets on every address `host` resolves to, all on one port.

    ably-js users write `endpoint: 'localhost'`, which node may resolve to ::1 or 127.0.0.1:
    both must reach the relay, and with port 0 both must share the port the OS picks.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    addresses = list(dict.fromkeys((info[0], info[4][0]) for info in infos))
    sockets: list[socket.socket] = []
    try:
        for family, address in addresses:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                # --workers: every worker listens on the port; the kernel spreads connections.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((address, port))
            sock.listen(1024)
            sock.setblocking(False)
            port = sock.getsockname()[1]
            sockets.append(sock)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


@web.middleware
async def _errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Every failure as Ably's error envelope, and CORS so browser apps can call the relay."""
    if request.method == "OPTIONS":
        return web.Response(status=204, headers=_CORS)
    try:
        response = await handler(request)
    except AblyError as error:
        if error.status == 401:
            request.app[_METRICS].auth_failures.labels(str(error.code)).inc()
        log.info(
            "%s %s refused: %s (%d)",
            request.method,
            request.path,
            error.message,
            error.code,
            extra={"code": error.code},
        )
        response = error_response(request, error)
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
        # Ably answers an unknown method on a known path as an unknown path: 404, 40400.
        response = error_response(
            request, AblyError.not_found(f"No route for {request.method} {request.path}")
        )
    except web.HTTPRequestEntityTooLarge:
        response = error_response(request, AblyError.too_large("Request body too large"))
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        response = error_response(request, AblyError.internal("Internal error"))
    if not response.prepared:
        response.headers.update(_CORS)
    return response
