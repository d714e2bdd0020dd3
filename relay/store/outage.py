"""How background work on the store reports the engine being away: once, not per attempt.

While PostgreSQL is down (or a SQLite file is full or read-only), every periodic task that
touches the store fails at each attempt, for a reason the operator learns from the first
failure. So each task says it with one warning when it starts failing, then at debug level
until it succeeds again, which it says once too. A failure that is not the engine's (a bug)
is still logged with its traceback each time.
"""

from __future__ import annotations

import logging
import sqlite3

import asyncpg

__all__ = ["ENGINE_AWAY", "OutageLog", "engine_away"]

ENGINE_AWAY: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,  # the connection closed under the call
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,  # shutting down, starting up, or a terminated backend
    asyncpg.InsufficientResourcesError,  # disk full, too many connections
    # Refused: a password or role changed, the database dropped. The operator's to fix, and
    # every attempt until then fails the same way.
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidCatalogNameError,
    sqlite3.OperationalError,  # full, read-only, an I/O error
)
"""The errors that say the engine cannot serve now, rather than that the call was wrong."""


def engine_away(exc: BaseException) -> bool:
    return isinstance(exc, ENGINE_AWAY)


class OutageLog:
    """The failures of one background task on `log`, described as `what` it was doing."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self.log = log
        self.what = what
        self.failing = False

    def failed(self, exc: BaseException) -> None:
        """Report `exc` (call from its `except` block, for the traceback of a bug)."""
        if not engine_away(exc):
            self.log.exception("%s failed", self.what)
        elif self.failing:
            self.log.debug("%s failed again: %s", self.what, exc)
        else:
            self.failing = True
            self.log.warning("%s failed, the store is unavailable (%s); retrying", self.what, exc)

    def succeeded(self) -> None:
        if self.failing:
            self.failing = False
            self.log.info("%s works again", self.what)
