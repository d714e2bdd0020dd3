"""Appends a message's row does not hold yet (the SQLite store).

An append is durable once its version row is committed. Rewriting the message's row (its
aggregate) as well on every append would write a streamed message's whole text again per token,
so the writer rewrites it only every `APPENDS_PER_ROW` appends (and at any other change), and
marks the row with the version it holds (`messages.folded_seq`). Whoever reads a marked row
folds in the appends logged after that version: those version rows are the rest of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from channel_relay.protocol.mutations import apply_mutation
from channel_relay.store.rows import unpack

__all__ = ["APPENDS_PER_ROW", "fold", "pending_query"]

# Appends left out of a message's row at most: what a read of it folds in, and how often a
# stream's row is rewritten.
APPENDS_PER_ROW = 64


def fold(aggregate: dict[str, Any], appends: Iterable[bytes]) -> dict[str, Any]:
    """The aggregate with `appends` (version rows, in seq order) folded in."""
    for body in appends:
        operation = unpack(body)
        aggregate, _ = apply_mutation(aggregate, operation, operation["version"])
    return aggregate


def pending_query(channel_id: int, marked: Sequence[tuple[int, int]]) -> tuple[str, list[Any]]:
    """The query for the appends left out of rows `marked` as (seq, folded_seq): rows of
    (target seq, version body), in seq order per message."""
    held = ", ".join(["(?, ?)"] * len(marked))
    sql = (
        f"WITH held (target, folded) AS (VALUES {held}) "
        "SELECT v.target_seq, v.body FROM held JOIN versions v ON v.channel_id = ? "
        "AND v.target_seq = held.target AND v.seq > held.folded ORDER BY v.target_seq, v.seq"
    )
    return sql, [*(n for pair in marked for n in pair), channel_id]
