"""Latency histograms and sequence checks that load workers fill and the orchestrator merges."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["LatencyHistogram", "SeqTotals", "SeqTracker"]


class LatencyHistogram:
    """10 us buckets up to 5 s (the last one catches the rest): cheap to fill, exact to merge."""

    RES_US = 10
    SIZE = 500_000

    def __init__(self) -> None:
        self.buckets = [0] * self.SIZE
        self.count = 0
        self.max_us = 0

    def add_us(self, us: int) -> None:
        i = us // 10
        if i >= 500_000:
            i = 499_999
        elif i < 0:
            i = 0
        self.buckets[i] += 1
        self.count += 1
        if us > self.max_us:
            self.max_us = us

    def reset(self) -> None:
        self.buckets = [0] * self.SIZE
        self.count = 0
        self.max_us = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "max_us": self.max_us,
            "buckets": {i: c for i, c in enumerate(self.buckets) if c},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LatencyHistogram:
        h = cls()
        h.merge_dict(d)
        return h

    def merge_dict(self, d: dict[str, Any]) -> None:
        for i, c in d["buckets"].items():
            self.buckets[int(i)] += c
        self.count += d["count"]
        self.max_us = max(self.max_us, d["max_us"])

    def percentile_ms(self, p: float) -> float | None:
        """The p-th percentile in milliseconds (upper edge of its bucket), None when empty."""
        if not self.count:
            return None
        rank = max(1, round(self.count * p / 100.0))
        seen = 0
        for i, c in enumerate(self.buckets):
            if c:
                seen += c
                if seen >= rank:
                    return min((i + 1) * self.RES_US, max(self.max_us, self.RES_US)) / 1000.0
        return self.max_us / 1000.0

    def summary(self) -> dict[str, float | int | None]:
        return {
            "count": self.count,
            "p50_ms": self.percentile_ms(50),
            "p99_ms": self.percentile_ms(99),
            "max_ms": self.max_us / 1000.0 if self.count else None,
        }


class SeqTracker:
    """Checks one stream of sequence numbers (from `first`): loss, duplicates, reordering."""

    __slots__ = ("dups", "expected", "missing", "received", "reordered")

    def __init__(self, first: int = 0) -> None:
        self.expected = first
        self.received = 0
        self.dups = 0
        self.reordered = 0
        self.missing: set[int] = set()

    def see(self, seq: int) -> None:
        self.received += 1
        if seq == self.expected:
            self.expected = seq + 1
        elif seq > self.expected:
            self.missing.update(range(self.expected, seq))
            self.expected = seq + 1
        elif seq in self.missing:
            self.missing.discard(seq)
            self.reordered += 1
        else:
            self.dups += 1

    def lost(self, last: int) -> int:
        """Sequence numbers up to `last` (inclusive) never received."""
        tail = max(0, last + 1 - self.expected)
        return len(self.missing) + tail


@dataclass
class SeqTotals:
    """Loss/duplicate/order counts summed over many streams."""

    streams: int = 0
    received: int = 0
    lost: int = 0
    dups: int = 0
    reordered: int = 0
    incomplete_streams: int = 0
    notes: list[str] = field(default_factory=list)

    def add(self, tracker: SeqTracker, last: int) -> None:
        self.streams += 1
        self.received += tracker.received
        lost = tracker.lost(last)
        self.lost += lost
        self.dups += tracker.dups
        self.reordered += tracker.reordered
        if lost:
            self.incomplete_streams += 1

    def merge(self, other: dict[str, Any]) -> None:
        for name in ("streams", "received", "lost", "dups", "reordered", "incomplete_streams"):
            setattr(self, name, getattr(self, name) + other[name])
        self.notes.extend(other.get("notes", []))

    @property
    def clean(self) -> bool:
        return self.lost == 0 and self.dups == 0 and self.reordered == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "streams": self.streams,
            "received": self.received,
            "lost": self.lost,
            "dups": self.dups,
            "reordered": self.reordered,
            "incomplete_streams": self.incomplete_streams,
            "notes": self.notes[:10],
        }
