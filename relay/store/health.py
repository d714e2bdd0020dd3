"""Whether the store takes writes, as its commits show: what /readyz reports beside its probe.

A probe can succeed where publishes fail: its one small row still fits into a free page of a
full SQLite database, or of a WAL file already grown. So readiness also follows the log's own
commits: once one fails for a reason of the engine's (full, read-only, an I/O error, the server
unreachable, the writer dead), the store is failing until a publish at least as large as every
write that failed commits, or a probe as large as the largest message allowed does (the readiness
check makes that one while the store is failing). A smaller write that commits proves nothing: a
presence event or a short message can fit into a nearly full database where the message that
failed still does not, and would make readiness flap.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from typing import Any

from channel_relay.protocol.errors import AblyError
from channel_relay.protocol.validation import message_size
from channel_relay.store.base import Publish

__all__ = ["WriteHealth", "ready_check_value"]


class WriteHealth:
    """`failure`: why the last failed write failed, while no publish as large has committed
    since."""

    def __init__(self) -> None:
        self.failure: str | None = None
        # The size of the largest message write that failed since the store last took one.
        self._failed_size = 0

    def record(
        self, ops: Sequence[Any], outcomes: Sequence[tuple[Any, BaseException | None]]
    ) -> None:
        """Take one commit's outcomes, in submission order."""
        for op, (_, error) in zip(ops, outcomes, strict=True):
            if error is None:
                if (
                    self.failure is not None
                    and isinstance(op, Publish)
                    and _size(op) >= self._failed_size
                ):
                    self.recovered()
            elif not isinstance(error, AblyError | LookupError):
                # A refusal (a change to a message that does not exist) or a channel deleted
                # under the write says nothing about the engine.
                self.failure = str(error) or type(error).__name__
                if isinstance(op, Publish):
                    self._failed_size = max(self._failed_size, _size(op))

    def recovered(self) -> None:
        """A write as large as a message committed: the engine takes writes again."""
        self.failure = None
        self._failed_size = 0


def _size(publish: Publish) -> int:
    return sum(message_size(m) for m in publish.messages)


def ready_check_value(size: int) -> str:
    """What a readiness probe writes: the time, padded to about `size` bytes with random hex
    (PostgreSQL would compress anything more regular into a few bytes)."""
    now = str(int(time.time() * 1000))
    return now + secrets.token_hex(max(0, size - len(now)) // 2)
