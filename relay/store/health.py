"""Whether the store takes writes, as its commits show: what /readyz reports beside its probe.

A probe can succeed where publishes fail: its one small row still fits into a free page of a
full SQLite database, or of a WAL file already grown. So readiness also follows the log's own
commits: once one fails for a reason of the engine's (full, read-only, an I/O error, the server
unreachable, the writer dead), the store is failing until a log write commits again or a probe
as large as a message does (the readiness check makes that one while the store is failing).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from typing import Any

from channel_relay.protocol.errors import AblyError
from channel_relay.store.base import Mutate, PresenceEvents, Publish

__all__ = ["WriteHealth", "ready_check_value"]

_LOG_WRITES = (Publish, Mutate, PresenceEvents)


class WriteHealth:
    """`failure`: why the last failed write failed, while no log write has committed since."""

    def __init__(self) -> None:
        self.failure: str | None = None

    def record(
        self, ops: Sequence[Any], outcomes: Sequence[tuple[Any, BaseException | None]]
    ) -> None:
        """Take one commit's outcomes, in submission order."""
        for op, (_, error) in zip(ops, outcomes, strict=True):
            if error is None:
                if isinstance(op, _LOG_WRITES):
                    self.failure = None
            elif not isinstance(error, AblyError | LookupError):
                # A refusal (a change to a message that does not exist) or a channel deleted
                # under the write says nothing about the engine.
                self.failure = str(error) or type(error).__name__

    def recovered(self) -> None:
        """A write as large as a message committed: the engine takes writes again."""
        self.failure = None


def ready_check_value(size: int) -> str:
    """What a readiness probe writes: the time, padded to about `size` bytes with random hex
    (PostgreSQL would compress anything more regular into a few bytes)."""
    now = str(int(time.time() * 1000))
    return now + secrets.token_hex(max(0, size - len(now)) // 2)
