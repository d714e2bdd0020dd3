"""`relay export` and `relay import`: fixture files (channel_relay.store.fixtures) out of and
into the relay's database, with a progress bar. Export works while the relay runs; import
wants it stopped (a running relay keeps channels' positions in memory), or use
`relay serve --import FILE`."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.progress import Progress

from channel_relay.cli.target import CliError
from channel_relay.settings_loader import load_settings
from channel_relay.store.base import Store
from channel_relay.store.fixtures import FixtureError, export_fixture, import_fixture
from channel_relay.store.postgres import PostgresStore
from channel_relay.store.sqlite import SqliteStore

__all__ = ["add_commands", "export_to", "import_from"]


def add_commands(commands: Any) -> None:
    export = commands.add_parser(
        "export", help="write channels (and with --keys, apps and keys) to a fixture file"
    )
    export.add_argument("file", metavar="FILE", help="the fixture file (JSON Lines; - for stdout)")
    export.add_argument("--app", help="only this app's channels")
    export.add_argument("--channel", metavar="GLOB", help="only channels matching, e.g. 'chat:*'")
    export.add_argument("--keys", action="store_true", help="include the apps and their keys")
    _database_arguments(export)
    export.set_defaults(run=run_export)
    load = commands.add_parser("import", help="load a fixture file (stop the relay first)")
    load.add_argument("file", metavar="FILE")
    _database_arguments(load)
    load.add_argument(
        "--force", action="store_true", help="even if the database's -wal file exists"
    )
    load.set_defaults(run=run_import)


def _database_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="the database (default: from --config, RELAY_DB, relay.db)")
    parser.add_argument(
        "--store",
        metavar="URL",
        help="a PostgreSQL store instead of a SQLite file (default: from --config, RELAY_STORE)",
    )
    parser.add_argument("--config", metavar="FILE", help="take the database from this file")


def run_export(args: argparse.Namespace) -> int:
    store, _ = _store(args, must_exist=True)
    summary = asyncio.run(_with_store(store, lambda s: export_to(s, args.file, args)))
    print(f"exported {summary} to {args.file}", file=sys.stderr)
    return 0


def run_import(args: argparse.Namespace) -> int:
    store, where = _store(args, must_exist=False)
    if isinstance(store, SqliteStore) and Path(where + "-wal").exists() and not args.force:
        raise CliError(
            f"{where}-wal exists: is the relay running? Stop it first "
            "(or use relay serve --import), or give --force"
        )
    summary = asyncio.run(_with_store(store, lambda s: import_from(s, args.file)))
    print(f"imported {summary} from {args.file} into {where}", file=sys.stderr)
    return 0


async def export_to(store: Any, file: str, args: argparse.Namespace | None = None) -> Any:
    """Export from an open store to `file` ("-": stdout), filtered as `args` says."""
    channels = len(await store.channel_list())
    with ExitStack() as stack:
        out: IO[str] = sys.stdout
        if file != "-":
            out = stack.enter_context(await asyncio.to_thread(open, file, "w", encoding="utf-8"))
        progress = stack.enter_context(_progress())
        task = progress.add_task(f"exporting to {file}", total=channels)
        try:
            return await export_fixture(
                store,
                out,
                app=getattr(args, "app", None),
                channels=getattr(args, "channel", None),
                keys=getattr(args, "keys", False),
                progress=lambda n: progress.advance(task, n),
            )
        finally:
            out.flush()


async def import_from(store: Any, file: str) -> Any:
    """Load the fixture `file` into an open store."""
    try:
        size = await asyncio.to_thread(os.path.getsize, file)
        lines = await asyncio.to_thread(open, file, encoding="utf-8")
        with lines, _progress() as progress:
            task = progress.add_task(f"importing {file}", total=size)
            return await import_fixture(store, lines, progress=lambda n: progress.advance(task, n))
    except FixtureError as error:
        raise CliError(f"{file}: {error}") from None
    except OSError as error:
        raise CliError(f"{file}: {error.strerror}") from None


def _progress() -> Progress:
    return Progress(console=Console(stderr=True), transient=True)


def _store(args: argparse.Namespace, *, must_exist: bool) -> tuple[Store, str]:
    """The store the arguments name, and where it is (for messages): a PostgreSQL URL from
    --store (or the settings, when no --db is given), else a SQLite file."""
    url = args.store
    if url is None and args.db is None:
        url = load_settings(config=args.config, env=os.environ).store
    if url is not None:
        return PostgresStore(url), url
    database = _database(args, must_exist=must_exist)
    return SqliteStore(database), database


def _database(args: argparse.Namespace, *, must_exist: bool) -> str:
    database = args.db
    if database is None:
        database = load_settings(config=args.config, env=os.environ).db_path
    if database is None:
        raise CliError("the settings name no database file (--memory)")
    if must_exist and not Path(database).is_file():
        raise CliError(f"no database at {database}")
    return database


async def _with_store(store: Store, work: Any) -> Any:
    await store.open()
    try:
        return await work(store)
    finally:
        await store.close()
