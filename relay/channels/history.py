"""History queries: Ably's parameters in, one page of a channel's log and the next page's link out.

The next page is addressed by a `cursor` query parameter holding the seq to continue from; it is
opaque to clients, who follow the `Link: <./messages?...>; rel="next"` header as given.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from channel_relay.channels.channel import Channel
from channel_relay.protocol.errors import AblyError
from channel_relay.protocol.serials import parse_serial
from channel_relay.protocol.validation import message_size
from channel_relay.store.base import HistoryQuery, StoredMessage

__all__ = [
    "HistoryPage",
    "HistoryParams",
    "link_header",
    "read_page",
    "read_presence_page",
    "read_versions",
]

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# The bytes of messages one page may hold (Ably's size of each, plus a little for the fields it
# leaves out): past it the page ends early, with a next link, as Ably's pages may.
PAGE_BYTES = 4 * 1024 * 1024
_ROW_OVERHEAD = 128
# Rows read from the store at a time while a page fills.
_CHUNK = 50


class _Row(Protocol):
    seq: int
    message: dict[str, Any]


@dataclass(frozen=True, slots=True)
class HistoryParams:
    limit: int = DEFAULT_LIMIT
    forwards: bool = False
    start: int | None = None
    end: int | None = None
    until_serial: str | None = None
    cursor: int | None = None

    @classmethod
    def parse(cls, query: Mapping[str, str], direction: str = "backwards") -> HistoryParams:
        """Read Ably's history parameters (`direction` when the query names none); 40003 for any
        value Ably would refuse."""
        limit = _int(query, "limit", DEFAULT_LIMIT)
        if not 1 <= limit <= MAX_LIMIT:
            raise AblyError.invalid_param(f"limit must be between 1 and {MAX_LIMIT}")
        direction = query.get("direction", direction)
        if direction not in ("forwards", "backwards"):
            raise AblyError.invalid_param("direction must be forwards or backwards")
        start, end = _opt_int(query, "start"), _opt_int(query, "end")
        if start is not None and end is not None and start > end:
            raise AblyError.invalid_param("start must not be later than end")
        until = query.get("from_serial") or query.get("fromSerial") or None
        if until is not None and parse_serial(until) is None:
            raise AblyError.invalid_param(f"from_serial {until!r} is not a serial of this channel")
        return cls(limit, direction == "forwards", start, end, until, _opt_int(query, "cursor"))

    def to_query(self) -> dict[str, str]:
        query: dict[str, str] = {
            "limit": str(self.limit),
            "direction": "forwards" if self.forwards else "backwards",
        }
        for key, value in (
            ("start", self.start),
            ("end", self.end),
            ("from_serial", self.until_serial),
            ("cursor", self.cursor),
        ):
            if value is not None:
                query[key] = str(value)
        return query


@dataclass(frozen=True, slots=True)
class HistoryPage:
    messages: list[dict[str, Any]]
    params: HistoryParams
    next: HistoryParams | None

    def links(self, resource: str) -> str:
        """The Link header ably-js and ably-python follow: first, current and next pages."""
        pages = [
            ("first", replace(self.params, cursor=None).to_query()),
            ("current", self.params.to_query()),
        ]
        if self.next is not None:
            pages.append(("next", self.next.to_query()))
        return link_header(resource, pages)


def link_header(resource: str, pages: list[tuple[str, Mapping[str, str]]]) -> str:
    """`<./resource?query>; rel="..."` for each page. ably-js accepts only that relative form
    and decodes the query with decodeURIComponent: spaces must be %20, never "+"."""
    return ", ".join(
        f'<./{resource}?{urlencode(dict(query), quote_via=quote)}>; rel="{rel}"'
        for rel, query in pages
    )


async def read_page(channel: Channel, params: HistoryParams) -> HistoryPage:
    """One page of `channel`'s messages, newest first unless `params.forwards`."""
    return await _page(channel, params, channel.store.history)


async def read_presence_page(channel: Channel, params: HistoryParams) -> HistoryPage:
    """One page of `channel`'s presence history (from_serial does not apply)."""
    return await _page(channel, replace(params, until_serial=None), channel.store.presence_history)


async def _page(
    channel: Channel,
    params: HistoryParams,
    read: Callable[[HistoryQuery], Awaitable[list[StoredMessage]]],
) -> HistoryPage:
    min_seq: int | None = None
    max_seq: int | None = None
    if params.until_serial is not None:
        parsed = parse_serial(params.until_serial)
        assert parsed is not None
        epoch, seq = parsed
        # A serial from an earlier log of this channel bounds nothing we still hold.
        max_seq = seq if epoch == channel.log.epoch else 0
    if params.cursor is not None:
        if params.forwards:
            min_seq = params.cursor
        else:
            max_seq = params.cursor if max_seq is None else min(max_seq, params.cursor)
    query = HistoryQuery(
        channel_id=channel.log.channel_id,
        limit=params.limit,
        forwards=params.forwards,
        min_seq=min_seq,
        max_seq=max_seq,
        start=params.start,
        end=params.end,
    )
    return await _fill(read, query, params)


async def read_versions(channel: Channel, seq: int, params: HistoryParams) -> HistoryPage:
    """One page of the versions of the message first published at `seq`; a message that never
    changed has one version, itself."""
    min_seq, max_seq = (params.cursor, None) if params.forwards else (None, params.cursor)
    channel_id = channel.log.channel_id
    query = HistoryQuery(
        channel_id=channel_id,
        limit=params.limit,
        forwards=params.forwards,
        min_seq=min_seq,
        max_seq=max_seq,
    )
    page = await _fill(lambda q: channel.store.versions(channel_id, seq, q), query, params)
    if not page.messages and params.cursor is None:
        message = await channel.message(seq)
        return HistoryPage([message] if message is not None else [], params, None)
    return page


async def _fill(
    read: Callable[[HistoryQuery], Awaitable[Sequence[_Row]]],
    query: HistoryQuery,
    params: HistoryParams,
) -> HistoryPage:
    """A page of up to `query.limit` rows and at most PAGE_BYTES of messages (at least one),
    read a chunk at a time, with the cursor of the next page when there is more.

    A page of a thousand 64 KiB messages would otherwise be read, decoded and encoded whole:
    a few such requests at once took the relay's memory to a gigabyte and stalled its loop.
    """
    limit = query.limit
    messages: list[dict[str, Any]] = []
    size = 0
    while True:
        # One row past the limit says whether there is a next page, and where it starts.
        wanted = min(limit + 1 - len(messages), _CHUNK)
        rows = await read(replace(query, limit=wanted))
        for row in rows:
            row_size = message_size(row.message) + _ROW_OVERHEAD
            if len(messages) == limit or (messages and size + row_size > PAGE_BYTES):
                return HistoryPage(messages, params, replace(params, cursor=row.seq))
            messages.append(row.message)
            size += row_size
        if len(rows) < wanted:
            return HistoryPage(messages, params, None)
        last = rows[-1].seq
        if query.forwards:
            query = replace(query, min_seq=last + 1)
        else:
            query = replace(query, max_seq=last - 1)


def _int(query: Mapping[str, str], key: str, default: int) -> int:
    value = _opt_int(query, key)
    return default if value is None else value


# Timestamps and cursors are stored as signed 64-bit integers.
_INT64 = range(-(2**63), 2**63)


def _opt_int(query: Mapping[str, str], key: str) -> int | None:
    raw = query.get(key)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise AblyError.invalid_param(f"{key} must be an integer") from None
    if value not in _INT64:
        raise AblyError.invalid_param(f"{key} is out of range")
    return value
