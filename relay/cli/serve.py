"""`relay serve`: run the relay until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from typing import Any

from channel_relay.config import Settings
from channel_relay.logs import configure as configure_logging
from channel_relay.server import Relay
from channel_relay.settings_loader import add_arguments, load_settings

__all__ = ["add_commands", "serve", "settings_from_args"]


def add_commands(commands: Any) -> None:
    parser = commands.add_parser(
        "serve",
        help="run the relay",
        description="Run the relay. Each setting comes from its flag, else its RELAY_* "
        "variable, else the config file, else its default.",
    )
    add_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(serve(settings))
    return 0


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The settings of `relay serve`: flags, RELAY_* variables, the config file, defaults."""
    return load_settings(args, os.environ, defaults={"host": "localhost"})


async def serve(settings: Settings) -> None:
    relay = Relay(settings)
    await relay.start()
    endpoint = "localhost" if settings.host in ("localhost", "127.0.0.1", "::1") else settings.host
    print(f"relay listening on {relay.url}", flush=True)
    print(f"database: {settings.db_path or '(in memory, removed at exit)'}", flush=True)
    print(f"key: {relay.default_key}", flush=True)
    if settings.inspector:
        # Only the generated key of local development goes in the link; a configured key's
        # secret is not the banner's to print again.
        generated = not (settings.keys or settings.apps)
        fragment = f"#key={relay.default_key}" if generated else ""
        print(f"inspector: {relay.url}/inspect{fragment}", flush=True)
    print(
        f"ably-js: new Ably.Realtime({{ key: '{relay.default_key}', endpoint: '{endpoint}', "
        f"port: {relay.port}, tls: {'true' if settings.tls_cert else 'false'} }})",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await relay.stop()
