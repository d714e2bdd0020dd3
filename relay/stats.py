"""App stats in Ably's shape: fixtures flattened to entries, interval ids, and rolling minutes up.

The relay keeps stats per app and minute (the sandbox's `POST /stats` fixtures are the only
source today). A stats record as the SDKs read it (Ably's stats schema, protocol v2 and later):
{intervalId, unit, schema, appId, entries: {"messages.inbound.all.messages.count": 50, ...}}.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from channel_relay.protocol.errors import AblyError

__all__ = [
    "SCHEMA",
    "UNITS",
    "StatsQuery",
    "fixture_entries",
    "format_interval",
    "interval_start",
    "roll_up",
]

SCHEMA = "https://schemas.ably.com/json/app-stats-0.0.5.json"
UNITS = ("minute", "hour", "day", "month")
_INTERVAL = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2})(?::(\d{2})(?::(\d{2}))?)?)?$")
_TRANSPORT_TOTALS = ("messages", "presence")
_MAX_LIMIT = 1000
_Interval = tuple[int, dict[str, float]]


def interval_start(interval_id: str) -> tuple[int, str]:
    """The start (ms since the epoch, UTC) and the unit of an interval id ("2024-02-03:15:04"
    is a minute, "2024-02-03:15" an hour, "2024-02-03" a day, "2024-02" a month)."""
    match = _INTERVAL.match(interval_id)
    if match is None:
        raise AblyError(40003, 400, f"Invalid interval id {interval_id!r}")
    year, month, day, hour, minute = match.groups()
    unit = UNITS[[day, hour, minute].count(None)]
    try:
        seconds = calendar.timegm(
            (int(year), int(month), int(day or 1), int(hour or 0), int(minute or 0), 0)
        )
        time.gmtime(seconds)
    except (ValueError, OverflowError) as exc:
        raise AblyError(40003, 400, f"Invalid interval id {interval_id!r}") from exc
    return seconds * 1000, unit


def _truncate(ms: int, unit: str) -> int:
    t = time.gmtime(ms // 1000)
    fields = {
        "minute": (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min),
        "hour": (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, 0),
        "day": (t.tm_year, t.tm_mon, t.tm_mday, 0, 0),
        "month": (t.tm_year, t.tm_mon, 1, 0, 0),
    }[unit]
    return calendar.timegm((*fields, 0)) * 1000


def _interval_end(start: int, unit: str) -> int:
    """The first ms after the interval that starts at `start`."""
    if unit == "month":
        t = time.gmtime(start // 1000)
        year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
        return calendar.timegm((year, month, 1, 0, 0, 0)) * 1000
    return start + {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000}[unit]


def format_interval(start: int, unit: str) -> str:
    t = time.gmtime(start // 1000)
    text = f"{t.tm_year:04d}-{t.tm_mon:02d}"
    if unit != "month":
        text += f"-{t.tm_mday:02d}"
    if unit in ("hour", "minute"):
        text += f":{t.tm_hour:02d}"
    if unit == "minute":
        text += f":{t.tm_min:02d}"
    return text


def fixture_entries(fixture: Mapping[str, Any]) -> dict[str, float]:
    """A stats fixture (Ably's v1 shape: inbound/outbound by transport and kind, persisted,
    connections, channels, apiRequests, tokenRequests; or ready-made `entries`) as entries."""
    if isinstance(fixture.get("entries"), Mapping):
        return {k: v for k, v in fixture["entries"].items() if _is_number(v)}
    entries: dict[str, float] = {}
    for key, value in fixture.items():
        if key in ("intervalId", "unit", "schema", "appId", "inProgress"):
            continue
        if key in ("inbound", "outbound") and isinstance(value, Mapping):
            _directional(entries, f"messages.{key}", value)
        elif key == "persisted" and isinstance(value, Mapping):
            _kinds(entries, "messages.persisted", value)
        elif key == "connections" and isinstance(value, Mapping):
            _summed(entries, "connections", value)
        elif key == "tokenRequests":
            _flatten(entries, "apiRequests.tokenRequests", value)
        elif key == "apiRequests" and isinstance(value, Mapping):
            # v1's apiRequests are the requests other than token requests; `all` counts both.
            _flatten(entries, "apiRequests.other", value)
        else:
            _flatten(entries, key, value)
    _total(entries, "apiRequests.all", ("apiRequests.other", "apiRequests.tokenRequests"))
    _total(entries, "messages.all", ("messages.inbound.all", "messages.outbound.all"))
    return entries


def _total(entries: dict[str, float], total: str, parts: Iterable[str]) -> None:
    """`total`'s entries as the sums of the same entries under each of `parts`."""
    for part in parts:
        for name, value in list(entries.items()):
            if name.startswith(part + "."):
                summed = total + name[len(part) :]
                entries[summed] = entries.get(summed, 0) + value


def _directional(entries: dict[str, float], prefix: str, by_transport: Mapping[str, Any]) -> None:
    """inbound/outbound: {transport: {messages|presence|all: {count, data}}} -> per transport
    and summed over transports as `all`."""
    for transport, kinds in by_transport.items():
        if transport != "all" and isinstance(kinds, Mapping):
            per = _kinds(entries, f"{prefix}.{transport}", kinds)
            for name, value in per.items():
                total = f"{prefix}.all.{name}"
                entries[total] = entries.get(total, 0) + value
    if isinstance(by_transport.get("all"), Mapping):
        _kinds(entries, f"{prefix}.all", by_transport["all"])


def _kinds(entries: dict[str, float], prefix: str, kinds: Mapping[str, Any]) -> dict[str, float]:
    """{messages|presence|all: {count, data}} with `all` summed when absent; returns the
    names added (relative to prefix) and their values."""
    added: dict[str, float] = {}
    for kind, counts in kinds.items():
        if isinstance(counts, Mapping):
            for field, value in counts.items():
                if _is_number(value):
                    added[f"{kind}.{field}"] = value
    if not isinstance(kinds.get("all"), Mapping):
        for kind in _TRANSPORT_TOTALS:
            for name, value in list(added.items()):
                if name.startswith(f"{kind}."):
                    total = "all." + name.partition(".")[2]
                    added[total] = added.get(total, 0) + value
    for name, value in added.items():
        entries[f"{prefix}.{name}"] = value
    return added


def _summed(entries: dict[str, float], prefix: str, by_kind: Mapping[str, Any]) -> None:
    """connections: {tls|plain: {peak, opened, ...}} plus `all` summed when absent."""
    totals: dict[str, float] = {}
    for kind, counts in by_kind.items():
        if isinstance(counts, Mapping):
            for field, value in counts.items():
                if _is_number(value):
                    entries[f"{prefix}.{kind}.{field}"] = value
                    if kind != "all":
                        totals[field] = totals.get(field, 0) + value
    if not isinstance(by_kind.get("all"), Mapping):
        for field, value in totals.items():
            entries[f"{prefix}.all.{field}"] = value


def _flatten(entries: dict[str, float], prefix: str, value: Any) -> None:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            _flatten(entries, f"{prefix}.{key}", inner)
    elif _is_number(value):
        entries[prefix] = value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def roll_up(
    minutes: Iterable[tuple[int, Mapping[str, float]]], unit: str
) -> list[tuple[int, dict[str, float]]]:
    """Minutes (start, entries), oldest first, summed into intervals of `unit`."""
    out: dict[int, dict[str, float]] = {}
    for start, entries in minutes:
        bucket = out.setdefault(_truncate(start, unit), {})
        for name, value in entries.items():
            bucket[name] = bucket.get(name, 0) + value
    return sorted(out.items())


@dataclass(frozen=True, slots=True)
class StatsQuery:
    """GET /stats parameters: start and end (ms or interval ids; end inclusive of the interval
    it names), limit (default 100, max 1000), direction (default backwards), unit (or `by`);
    `cursor` (set by the relay's own next links) is where the page continues from, so the
    first link stays the original query."""

    start: int
    end: int
    limit: int
    forwards: bool
    unit: str
    cursor: int | None = None

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> StatsQuery:
        unit = query.get("unit") or query.get("by") or "minute"
        if unit not in UNITS:
            raise AblyError(40003, 400, f"Invalid unit {unit!r}")
        direction = query.get("direction", "backwards")
        if direction not in ("forwards", "backwards"):
            raise AblyError(40003, 400, f"Invalid direction {direction!r}")
        try:
            limit = int(query.get("limit", "100"))
        except ValueError as exc:
            raise AblyError(40003, 400, "Invalid limit") from exc
        if not 1 <= limit <= _MAX_LIMIT:
            raise AblyError(40003, 400, f"limit must be between 1 and {_MAX_LIMIT}")
        start = _bound(query.get("start"), 0, end=False)
        end = _bound(query.get("end"), int(time.time() * 1000), end=True)
        if start > end:
            raise AblyError(40003, 400, "start must not be later than end")
        cursor = query.get("cursor")
        if cursor is not None and not cursor.isdigit():
            raise AblyError(40003, 400, "Invalid cursor")
        return cls(
            start,
            end,
            limit,
            direction == "forwards",
            unit,
            None if cursor is None else int(cursor),
        )

    def span(self) -> tuple[int, int]:
        """The minutes to read: start and end widened to whole intervals of the unit, as Ably
        counts the hour (day, month) that holds `start` whole."""
        return (
            _truncate(self.start, self.unit),
            _interval_end(_truncate(self.end, self.unit), self.unit) - 1,
        )

    def page(self, intervals: list[_Interval]) -> tuple[list[_Interval], bool]:
        """The page of intervals this query selects, and whether more follow."""
        if self.cursor is not None:
            cursor = self.cursor
            intervals = [
                i for i in intervals if (i[0] >= cursor if self.forwards else i[0] < cursor)
            ]
        ordered = intervals if self.forwards else list(reversed(intervals))
        return ordered[: self.limit], len(ordered) > self.limit

    def after(self, last_start: int) -> dict[str, str]:
        """The query of the next page, after the interval starting at `last_start`."""
        params = self.params()
        params["cursor"] = str(
            _interval_end(last_start, self.unit) if self.forwards else last_start
        )
        return params

    def params(self) -> dict[str, str]:
        return {
            "start": str(self.start),
            "end": str(self.end),
            "limit": str(self.limit),
            "direction": "forwards" if self.forwards else "backwards",
            "unit": self.unit,
        }

    def in_progress(self, start: int, now: int) -> bool:
        return start <= now < _interval_end(start, self.unit)


def _bound(value: str | None, default: int, *, end: bool) -> int:
    if value is None or value == "":
        return default
    if value.isdigit():
        return int(value)
    start, unit = interval_start(value)
    return _interval_end(start, unit) - 1 if end else start
