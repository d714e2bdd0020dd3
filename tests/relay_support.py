"""A real relay on a free port of 127.0.0.1, with its own SQLite file, for fixtures that need
settings of their own. Importable from every test folder as `relay_support`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from channel_relay.config import Settings
from channel_relay.server import Relay

__all__ = ["APP_KEY", "running_relay"]

APP_KEY = "app1.key1:secret1"


@contextlib.asynccontextmanager
async def running_relay(tmp_path: Path, **settings: Any) -> AsyncIterator[Relay]:
    """A started relay with key APP_KEY and `settings` over the defaults; stopped on exit."""
    server = Relay(
        Settings(
            host="127.0.0.1",
            port=0,
            db_path=str(tmp_path / "relay.db"),
            keys=[APP_KEY],
            **settings,
        )
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
