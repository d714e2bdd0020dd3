"""Annotation summaries: what Ably rolls a message's annotations up into, per annotation type.

The type is "namespace:aggregation.vN"; the aggregations, replayed over a message's annotations
in serial order (create adds, delete takes away):

- total.v1: {total}, the count of annotations.
- flag.v1: {total, clientIds, clipped}, each client counted once per type.
- distinct.v1: per name {total, clientIds, clipped}, each client once per name.
- unique.v1: per name, as distinct, but a client counts under one name at a time (its latest).
- multiple.v1: per name {total, clientIds: {clientId: count}, totalUnidentified, clipped,
  totalClientIds}, adding each annotation's `count` (default 1).

Pure functions: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

__all__ = ["IDENTIFIED_AGGREGATIONS", "aggregation", "summarize"]

# Aggregations that attribute annotations to clients: an anonymous client cannot publish them.
IDENTIFIED_AGGREGATIONS = frozenset({"flag", "distinct", "unique"})
_DELETE = 1


def aggregation(kind: str) -> str:
    """The aggregation of an annotation type: "reactions:distinct.v1" -> "distinct"."""
    return kind.partition(":")[2].partition(".")[0]


def summarize(annotations: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The summary of a message's annotations (oldest first), by annotation type."""
    states: dict[str, _Summary] = {}
    for annotation in annotations:
        kind = annotation["type"]
        state = states.get(kind)
        if state is None:
            state = states[kind] = _SUMMARIES[aggregation(kind)]()
        if annotation.get("action") == _DELETE:
            state.remove(annotation)
        else:
            state.add(annotation)
    return {kind: state.entry() for kind, state in states.items()}


class _Summary(Protocol):
    def add(self, annotation: dict[str, Any]) -> None: ...

    def remove(self, annotation: dict[str, Any]) -> None: ...

    def entry(self) -> dict[str, Any]: ...


def _client_list(clients: Iterable[str]) -> dict[str, Any]:
    ids = list(clients)
    return {"total": len(ids), "clientIds": ids, "clipped": False}


class _Total:
    def __init__(self) -> None:
        self.total = 0

    def add(self, annotation: dict[str, Any]) -> None:
        self.total += 1

    def remove(self, annotation: dict[str, Any]) -> None:
        self.total = max(self.total - 1, 0)

    def entry(self) -> dict[str, Any]:
        return {"total": self.total}


class _Flag:
    def __init__(self) -> None:
        # dicts as ordered sets: clientIds in the order they first flagged.
        self.clients: dict[str, None] = {}

    def add(self, annotation: dict[str, Any]) -> None:
        self.clients.setdefault(annotation["clientId"], None)

    def remove(self, annotation: dict[str, Any]) -> None:
        self.clients.pop(annotation["clientId"], None)

    def entry(self) -> dict[str, Any]:
        return _client_list(self.clients)


class _Distinct:
    def __init__(self) -> None:
        self.names: dict[str, dict[str, None]] = {}

    def add(self, annotation: dict[str, Any]) -> None:
        self.names.setdefault(annotation.get("name", ""), {}).setdefault(
            annotation["clientId"], None
        )

    def remove(self, annotation: dict[str, Any]) -> None:
        clients = self.names.get(annotation.get("name", ""))
        if clients is not None:
            clients.pop(annotation["clientId"], None)

    def entry(self) -> dict[str, Any]:
        return {name: _client_list(clients) for name, clients in self.names.items() if clients}


class _Unique(_Distinct):
    def add(self, annotation: dict[str, Any]) -> None:
        for clients in self.names.values():
            clients.pop(annotation["clientId"], None)
        super().add(annotation)

    def remove(self, annotation: dict[str, Any]) -> None:
        for clients in self.names.values():
            clients.pop(annotation["clientId"], None)


class _Multiple:
    def __init__(self) -> None:
        self.names: dict[str, dict[str, int]] = {}
        self.unidentified: dict[str, int] = {}

    def add(self, annotation: dict[str, Any]) -> None:
        name = annotation.get("name", "")
        count = annotation.get("count", 1)
        client_id = annotation.get("clientId")
        counts = self.names.setdefault(name, {})
        if client_id is None:
            self.unidentified[name] = self.unidentified.get(name, 0) + count
        else:
            counts[client_id] = counts.get(client_id, 0) + count

    def remove(self, annotation: dict[str, Any]) -> None:
        client_id = annotation.get("clientId")
        counts = self.names.get(annotation.get("name", ""))
        if counts is not None and client_id is not None:
            counts.pop(client_id, None)

    def entry(self) -> dict[str, Any]:
        out = {}
        for name, counts in self.names.items():
            unidentified = self.unidentified.get(name, 0)
            if not counts and not unidentified:
                continue
            out[name] = {
                "total": sum(counts.values()) + unidentified,
                "clientIds": dict(counts),
                "totalUnidentified": unidentified,
                "clipped": False,
                "totalClientIds": len(counts),
            }
        return out


_SUMMARIES: dict[str, Callable[[], _Summary]] = {
    "total": _Total,
    "flag": _Flag,
    "distinct": _Distinct,
    "unique": _Unique,
    "multiple": _Multiple,
}
