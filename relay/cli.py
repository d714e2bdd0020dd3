"""The `relay` command: `serve`, `config check`, `backup` and `restore`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

from channel_relay import __version__
from channel_relay.backup import BackupError, backup, restore
from channel_relay.config import Settings
from channel_relay.logs import configure as configure_logging
from channel_relay.server import Relay
from channel_relay.settings_loader import ConfigError, add_arguments, check_file, load_settings

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relay", description="An Ably-compatible channel relay")
    parser.add_argument("--version", action="version", version=f"channel-relay {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the relay",
        description="Run the relay. Each setting comes from its flag, else its RELAY_* "
        "variable, else the config file, else its default.",
    )
    add_arguments(serve)
    config = commands.add_parser("config", help="work with config files")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="validate a config file, with line numbers")
    check.add_argument("file", metavar="FILE")
    copy = commands.add_parser("backup", help="copy the database consistently while the relay runs")
    copy.add_argument("path", metavar="PATH", help="where to write the copy")
    copy.add_argument("--db", help="the database (default: from --config, RELAY_DB, relay.db)")
    copy.add_argument("--config", metavar="FILE", help="take the database path from this file")
    back = commands.add_parser(
        "restore", help="put a backup in place of the database (stop the relay first)"
    )
    back.add_argument("backup", metavar="BACKUP")
    back.add_argument("--db", help="the database (default: from --config, RELAY_DB, relay.db)")
    back.add_argument("--config", metavar="FILE", help="take the database path from this file")
    back.add_argument(
        "--force", action="store_true", help="even if the database's -wal file exists"
    )
    return parser


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


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            settings = settings_from_args(args)
            configure_logging(settings.log_level, settings.log_format)
            asyncio.run(serve(settings))
        elif args.command == "config":
            return _check(args.file)
        elif args.command in ("backup", "restore"):
            return _backup_or_restore(args)
    except ConfigError as error:
        print("relay: invalid settings:", file=sys.stderr)
        for problem in error.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    return 0


def _check(path: str) -> int:
    settings, problems = check_file(path)
    if settings is None:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"{path}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    keys = sum(len(app.keys) for app in settings.apps) + len(settings.keys)
    tls = "TLS" if settings.tls_cert else "no TLS"
    print(
        f"{path}: OK: {settings.host}:{settings.port}, database "
        f"{settings.db_path or '(in memory)'}, {len(settings.apps)} app(s), {keys} key(s), {tls}"
    )
    return 0


def _backup_or_restore(args: argparse.Namespace) -> int:
    database = args.db
    if database is None:
        settings = load_settings(config=args.config, env=os.environ)
        database = settings.db_path
    if database is None:
        print("relay: the settings name no database file (--memory)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    try:
        if args.command == "backup":
            info = backup(database, args.path)
            print(
                f"backup of {database} written to {info.path}: {info.bytes} bytes, "
                f"{info.channels} channels, {info.messages} messages, {info.seconds:.2f} s"
            )
        else:
            info = restore(args.backup, database, force=args.force)
            print(
                f"{database} restored from {args.backup}: {info.channels} channels, "
                f"{info.messages} messages; start the relay"
            )
    except BackupError as error:
        print(f"relay {args.command}: {error}", file=sys.stderr)
        return 1
    return 0
