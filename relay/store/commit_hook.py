"""The hook both stores call after each commit (metrics)."""

from __future__ import annotations

import logging
from collections.abc import Callable

__all__ = ["CommitHook", "report_commit"]

log = logging.getLogger(__name__)

CommitHook = Callable[[int, float], None]
"""Called with (operations committed, seconds the commit took)."""


def report_commit(hook: CommitHook | None, operations: int, seconds: float) -> None:
    if hook is None:
        return
    try:
        hook(operations, seconds)
    except Exception:
        # Metrics must never stand between a durable commit and its acknowledgement.
        log.exception("store commit hook failed")
