"""Which relay the client commands talk to, and with which key.

`--url` or RELAY_URL, else the address the settings give `relay serve` (RELAY_HOST, RELAY_PORT,
the config file), so a relay started with `make serve` is found with no flags. `--key` or
RELAY_KEY, else the first key of the settings, else the default app's key kept in the
settings' database (the one `relay serve` made and printed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

from channel_relay.auth.keys import ApiKey
from channel_relay.client import Auth, Realtime, Rest
from channel_relay.deployment import configured_keys, stored_default_key
from channel_relay.settings_loader import load_settings
from channel_relay.store.sqlite import SqliteStore

__all__ = ["CliError", "Target", "add_target_arguments", "resolve"]

_ANY_ADDRESS = ("", "0.0.0.0", "::", "127.0.0.1", "::1")


class CliError(Exception):
    """A failure the command reports in one line (no traceback) before exiting non-zero."""


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    key: str

    def rest(self) -> Rest:
        auth = Auth(key=self.key)
        auth.base_url = self.url
        return Rest(self.url, auth)

    def realtime(self, client_id: str | None = None) -> Realtime:
        return Realtime(self.key, url=self.url, client_id=client_id)


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="the relay, e.g. http://localhost:8080 [RELAY_URL]")
    parser.add_argument("--key", help="API key APPID.KEYID:SECRET [RELAY_KEY]")
    parser.add_argument(
        "--config", metavar="FILE", help="find the relay and its key from this config file"
    )


async def resolve(args: argparse.Namespace) -> Target:
    """The relay and key from the flags, the environment, then the settings and database."""
    url = args.url or os.environ.get("RELAY_URL")
    key = args.key or os.environ.get("RELAY_KEY")
    if url and key:
        return Target(url.rstrip("/"), key)
    settings = load_settings(config=args.config, env=os.environ, defaults={"host": "localhost"})
    if not url:
        host = "localhost" if settings.host in _ANY_ADDRESS else settings.host
        host = f"[{host}]" if ":" in host else host
        url = f"{'https' if settings.tls_cert else 'http'}://{host}:{settings.port}"
    if not key:
        key = await _settings_key(settings.db_path, configured_keys(settings))
    return Target(url.rstrip("/"), key)


async def _settings_key(db_path: str | None, configured: list[ApiKey]) -> str:
    if configured:
        return str(configured[0])
    if db_path is None or not await asyncio.to_thread(Path(db_path).is_file):
        where = "a throwaway database" if db_path is None else f"no database at {db_path}"
        raise CliError(
            f"no key: give --key or RELAY_KEY ({where} to take the local default key from)"
        )
    store = SqliteStore(db_path)
    await store.open()
    try:
        key = await stored_default_key(store)
    finally:
        await store.close()
    if key is None:
        raise CliError(f"no key: give --key or RELAY_KEY ({db_path} has no default key)")
    return str(key)
