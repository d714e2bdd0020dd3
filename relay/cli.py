"""`relay serve`: run the relay from the command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

from relay import __version__
from relay.config import Settings
from relay.server import Relay

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relay", description="An Ably-compatible channel relay")
    parser.add_argument("--version", action="version", version=f"channel-relay {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the relay")
    env = os.environ
    serve.add_argument("--host", default=env.get("RELAY_HOST", "localhost"))
    serve.add_argument("--port", type=int, default=int(env.get("RELAY_PORT", "8080")))
    where = serve.add_mutually_exclusive_group()
    where.add_argument("--db", default=env.get("RELAY_DB", "relay.db"), help="SQLite database file")
    where.add_argument(
        "--memory", action="store_true", help="a throwaway database, removed at exit"
    )
    serve.add_argument(
        "--key",
        action="append",
        default=None,
        metavar="APPID.KEYID:SECRET",
        help="an API key to accept (repeatable); RELAY_KEYS takes a comma-separated list",
    )
    serve.add_argument("--log-level", default=env.get("RELAY_LOG_LEVEL", "INFO"))
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    keys = args.key
    if keys is None:
        keys = [k.strip() for k in os.environ.get("RELAY_KEYS", "").split(",") if k.strip()]
    return Settings(
        host=args.host,
        port=args.port,
        db_path=None if args.memory else args.db,
        keys=keys,
    )


async def serve(settings: Settings) -> None:
    relay = Relay(settings)
    await relay.start()
    endpoint = "localhost" if settings.host in ("localhost", "127.0.0.1", "::1") else settings.host
    print(f"relay listening on {relay.url}", flush=True)
    print(f"database: {settings.db_path or '(in memory, removed at exit)'}", flush=True)
    print(f"key: {relay.default_key}", flush=True)
    print(
        f"ably-js: new Ably.Realtime({{ key: '{relay.default_key}', endpoint: '{endpoint}', "
        f"port: {relay.port}, tls: false }})",
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


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command == "serve":
        asyncio.run(serve(settings_from_args(args)))
    return 0
