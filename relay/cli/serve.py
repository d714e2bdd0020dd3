"""`relay serve`: run the relay until SIGINT or SIGTERM.

The banner says where the relay listens, which database it keeps and which key to use. A key
generated for local development is printed whole; a key that came from a flag, a variable or a
config file is named, with where its secret lives, never printed. A start that cannot succeed
(the port is taken, the database cannot serve, a TLS file is missing) is one line on stderr
and exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import logging
import os
import signal
import socket
import sqlite3
import ssl
import sys
from collections.abc import Callable
from multiprocessing.synchronize import Event
from typing import Any

from channel_relay.cli.fixtures import export_to, import_from
from channel_relay.cli.target import CliError
from channel_relay.cli.workers import run_workers
from channel_relay.config import Settings
from channel_relay.logs import configure as configure_logging
from channel_relay.server import Relay
from channel_relay.settings_loader import add_arguments, load_settings
from channel_relay.store.base import Store
from channel_relay.store.postgres import location
from channel_relay.store.preflight import StoreOpenError

__all__ = ["add_commands", "serve", "settings_from_args"]

log = logging.getLogger(__name__)

_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def add_commands(commands: Any) -> None:
    parser = commands.add_parser(
        "serve",
        help="run the relay",
        description="Run the relay. Each setting comes from its flag, else its RELAY_* "
        "variable, else the config file, else its default.",
    )
    add_arguments(parser)
    parser.add_argument(
        "--import",
        dest="import_file",
        metavar="FILE",
        help="load this fixture file at start (its channels replace those of the same name)",
    )
    parser.add_argument(
        "--export-on-exit",
        dest="export_file",
        metavar="FILE",
        help="write every channel, app and key to this fixture file when stopping",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    configure_logging(settings.log_level, settings.log_format)
    worker = _Worker(_secret_source(args, settings), args.import_file, args.export_file)
    if settings.workers > 1:
        return run_workers(settings, worker)
    return worker.serve(settings)


class _Worker:
    """One relay process: the only one, or one of `--workers` (the first of which imports
    and exports fixtures)."""

    def __init__(
        self, secret_source: str | None, import_file: str | None, export_file: str | None
    ) -> None:
        self.secret_source = secret_source
        self.import_file = import_file
        self.export_file = export_file

    def __call__(self, settings: Settings, first: bool, ready: Event) -> None:
        configure_logging(settings.log_level, settings.log_format)
        if not first:
            self.import_file = self.export_file = None
        sys.exit(self.serve(settings, ready.set))

    def serve(self, settings: Settings, ready: Callable[[], None] | None = None) -> int:
        try:
            asyncio.run(
                serve(
                    settings,
                    self.secret_source,
                    import_file=self.import_file,
                    export_file=self.export_file,
                    ready=ready,
                )
            )
        except StartError as error:
            print(f"relay: cannot start: {error}", file=sys.stderr)
            return 1
        return 0


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The settings of `relay serve`: flags, RELAY_* variables, the config file, defaults."""
    return load_settings(args, os.environ, defaults={"host": "localhost"})


class StartError(Exception):
    """Why the relay could not start, in one line."""


async def serve(
    settings: Settings,
    secret_source: str | None = None,
    *,
    import_file: str | None = None,
    export_file: str | None = None,
    ready: Callable[[], None] | None = None,
) -> None:
    """Run a relay on `settings` until SIGINT or SIGTERM. `secret_source` names where the
    first key's secret came from (None: generated here, so printed whole). `import_file` is a
    fixture loaded before serving; `export_file` receives everything once stopped. `ready` is
    called once the relay listens."""
    relay = Relay(settings)
    prepare = None
    if import_file is not None:
        path = import_file

        async def prepare(store: Store) -> None:
            print(f"imported {await import_from(store, path)} from {path}", flush=True)

    finish = None
    if export_file is not None:
        out = export_file

        async def finish(store: Store) -> None:
            summary = await export_to(store, out, argparse.Namespace(keys=True))
            print(f"exported {summary} to {out}", flush=True)

    # Handlers first: a SIGINT or SIGTERM that arrives while starting or right after the banner
    # drains the relay like any other, instead of interrupting it mid-way.
    stop = asyncio.Event()
    received: list[str] = []
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, lambda sig=sig: (received.append(sig.name), stop.set()))
    try:
        await relay.start(prepare)
    except Exception as exc:
        reason = _start_failure(exc, settings)
        if reason is None:
            raise
        log.debug("start failed", exc_info=True)
        raise StartError(reason) from None
    _settle_gc()
    for line in banner(relay, secret_source):
        print(line, flush=True)
    if ready is not None:
        ready()
    try:
        await stop.wait()
        print(
            f"{received[0]}: draining: {relay.realtime.open_sockets} connection(s) told to "
            f"reconnect elsewhere once what they published is stored (at most "
            f"{settings.drain_timeout:g} s)",
            flush=True,
        )
    finally:
        await relay.stop(finish)


# Gen-0 collections every 10,000 net container allocations, not CPython's 700. Measured on the
# durable load (50 connections x 1,000 channels, docs/BENCHMARKS.md): relay CPU per ACKed
# publish 100 -> 84 us, most of the cyclic GC's share gone; 50,000 saved little more (82 us)
# and had one run with a p99 of 870 ms, the price of rarer but longer collections.
_GEN0_THRESHOLD = 10_000


def _settle_gc() -> None:
    """Once started: everything allocated so far (modules, settings, the app registry) lives
    as long as the process, so the collector stops scanning it (`gc.freeze`), and young
    collections run less often. A publish allocates dozens of containers, nearly all freed by
    reference counting within milliseconds: at the default threshold the collector ran every
    few publishes and found almost nothing."""
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(_GEN0_THRESHOLD, gen1, gen2)


def banner(relay: Relay, secret_source: str | None) -> list[str]:
    settings = relay.settings
    endpoint = "localhost" if settings.host in _LOOPBACK else settings.host
    key_name = relay.default_key.partition(":")[0]
    if secret_source is None:
        key_line = f"key: {relay.default_key}"
        snippet_key = relay.default_key
    else:
        key_line = f"key: {key_name} (its secret is in {secret_source})"
        snippet_key = f"{key_name}:<secret>"
    lines = [
        f"relay listening on {relay.url}",
        f"database: {_database(settings)}",
        key_line,
    ]
    if settings.inspector:
        # Only the generated key of local development goes in the link.
        fragment = f"#key={relay.default_key}" if secret_source is None else ""
        lines.append(f"inspector: {relay.url}/inspect{fragment}")
    lines += [
        f"ably-js: new Ably.Realtime({{ key: '{snippet_key}', endpoint: '{endpoint}', "
        f"port: {relay.port}, tls: {'true' if settings.tls_cert else 'false'} }})",
    ]
    if settings.sandbox:
        lines.append(
            "sandbox: on (POST /apps, DELETE /apps/ID, POST /stats, /sandbox/faults): "
            "for test suites, never for a deployment"
        )
    return lines


def _secret_source(args: argparse.Namespace, settings: Settings) -> str | None:
    """Where the first key's secret came from, or None for the generated default key."""
    if not settings.keys and not settings.apps:
        return None
    if settings.keys:
        if args.keys:
            return "the --key flag"
        if "RELAY_KEYS" in os.environ:
            return "the RELAY_KEYS variable"
    config = args.config or os.environ.get("RELAY_CONFIG")
    return f"the config file {config}"


def _start_failure(exc: Exception, settings: Settings) -> str | None:
    """The one-line cause of a failed start, or None for a failure that is a bug."""
    where = f"{settings.host}:{settings.port}"
    if isinstance(exc, StoreOpenError):
        return f"database: {exc}"
    if isinstance(exc, CliError):
        return str(exc)
    if isinstance(exc, sqlite3.Error):
        return f"database {settings.db_path}: {exc}"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host {settings.host} ({exc.strerror})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS certificate or key: {exc.reason or exc}"
    if isinstance(exc, OSError):
        if exc.filename:
            return f"{exc.filename}: {exc.strerror}"
        if exc.errno == errno.EADDRINUSE:
            return f"{where} is already in use (another relay? choose a port with --port)"
        if exc.errno == errno.EACCES:
            return f"no permission to listen on {where}"
        if exc.errno == errno.EADDRNOTAVAIL:
            return f"{settings.host} is not an address of this machine"
        return f"cannot listen on {where}: {exc.strerror or exc}"
    return None


def _database(settings: Settings) -> str:
    """Where the relay keeps everything, as the banner names it (no password)."""
    if settings.store is not None:
        return location(settings.store)
    return settings.db_path or "(in memory, removed at exit)"
