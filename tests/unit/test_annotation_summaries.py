"""Annotation summaries as Ably rolls them up (channel_relay.channels.summaries)."""

from __future__ import annotations

from typing import Any

from channel_relay.channels.summaries import summarize


def _a(kind: str, client: str | None, name: str | None = None, **more: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind, "action": more.pop("action", 0), **more}
    if client is not None:
        out["clientId"] = client
    if name is not None:
        out["name"] = name
    return out


def test_unique_moves_a_client_to_its_latest_name_and_delete_removes_it() -> None:
    kind = "poll:unique.v1"
    summary = summarize(
        [_a(kind, "a", "x"), _a(kind, "b", "x"), _a(kind, "a", "y"), _a(kind, "b", "x", action=1)]
    )
    assert summary == {kind: {"y": {"total": 1, "clientIds": ["a"], "clipped": False}}}


def test_multiple_adds_counts_and_keeps_unidentified_apart() -> None:
    kind = "likes:multiple.v1"
    summary = summarize(
        [_a(kind, "a", "clap", count=2), _a(kind, None, "clap", count=5), _a(kind, "a", "clap")]
    )
    assert summary[kind]["clap"] == {
        "total": 8,
        "clientIds": {"a": 3},
        "totalUnidentified": 5,
        "clipped": False,
        "totalClientIds": 1,
    }


def test_distinct_counts_a_client_once_per_name_and_total_never_goes_negative() -> None:
    summary = summarize(
        [
            _a("r:distinct.v1", "a", "x"),
            _a("r:distinct.v1", "a", "x"),
            _a("n:total.v1", None),
            _a("n:total.v1", None, action=1),
            _a("n:total.v1", None, action=1),
        ]
    )
    assert summary["r:distinct.v1"] == {"x": {"total": 1, "clientIds": ["a"], "clipped": False}}
    assert summary["n:total.v1"] == {"total": 0}
