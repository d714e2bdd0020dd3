"""`relay config check`, `relay backup` and `relay restore`: the config file and the database,
with or without a running relay."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from channel_relay.backup import BackupError, backup, restore
from channel_relay.settings_loader import check_file, load_settings

__all__ = ["add_commands"]


def add_commands(commands: Any) -> None:
    config = commands.add_parser("config", help="work with config files")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="validate a config file, with line numbers")
    check.add_argument("file", metavar="FILE")
    check.set_defaults(run=check_config)
    copy = commands.add_parser("backup", help="copy the database consistently while the relay runs")
    copy.add_argument("path", metavar="PATH", help="where to write the copy")
    copy.add_argument("--db", help="the database (default: from --config, RELAY_DB, relay.db)")
    copy.add_argument("--config", metavar="FILE", help="take the database path from this file")
    copy.set_defaults(run=backup_or_restore)
    back = commands.add_parser(
        "restore", help="put a backup in place of the database (stop the relay first)"
    )
    back.add_argument("backup", metavar="BACKUP")
    back.add_argument("--db", help="the database (default: from --config, RELAY_DB, relay.db)")
    back.add_argument("--config", metavar="FILE", help="take the database path from this file")
    back.add_argument(
        "--force", action="store_true", help="even if the database's -wal file exists"
    )
    back.set_defaults(run=backup_or_restore)


def check_config(args: argparse.Namespace) -> int:
    path = args.file
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


def backup_or_restore(args: argparse.Namespace) -> int:
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
