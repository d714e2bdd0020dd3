"""What both stores share about rows: the stored form of a message (msgpack of the wire dict,
str and bytes data kept apart) and the tail of a paged history query."""

from __future__ import annotations

import base64
from typing import Any

import msgpack

from channel_relay.store.base import HistoryQuery

__all__ = ["pack", "page_clause", "unpack", "unpack_list"]

pack = msgpack.Packer(use_bin_type=True).pack


def unpack(body: bytes) -> dict[str, Any]:
    return msgpack.unpackb(body, raw=False)


def unpack_list(text: str) -> list[dict[str, Any]]:
    """Messages packed with `pack` and sent as base64 text (in a notification)."""
    messages: list[dict[str, Any]] = msgpack.unpackb(base64.b64decode(text), raw=False)
    return messages


def page_clause(
    query: HistoryQuery, *, with_time: bool, time: str = "timestamp"
) -> tuple[str, list[Any]]:
    """The WHERE tail (after a `channel_id = ?` clause), ORDER BY and LIMIT of a paged query,
    with `?` placeholders, and its parameters (the channel id first). `time` is how the
    timestamp is named in the bounds."""
    clauses: list[str] = []
    params: list[Any] = [query.channel_id]
    bounds: list[tuple[str, int | None]] = [
        ("seq >= ?", query.min_seq),
        ("seq <= ?", query.max_seq),
    ]
    if with_time:
        bounds += [(f"{time} >= ?", query.start), (f"{time} <= ?", query.end)]
    for clause, value in bounds:
        if value is not None:
            clauses.append(f"AND {clause}")
            params.append(value)
    params.append(query.limit)
    order = "ASC" if query.forwards else "DESC"
    return f"{' '.join(clauses)} ORDER BY seq {order} LIMIT ?", params
