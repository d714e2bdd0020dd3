"""REST batch publish and batch presence through ably-js (rest.batchPublish, rest.batchPresence)."""

from __future__ import annotations

from interop_support import RunNode


async def test_batch_publish_delivers_to_every_channel_and_reports_each_outcome(
    run_node: RunNode, fmt: str
) -> None:
    out = await run_node("batch.mjs", format=fmt, args={"a": "batch:a", "b": "batch:b"})

    single = out["single"]
    assert (single["successCount"], single["failureCount"]) == (2, 0)
    assert [r["channel"] for r in single["results"]] == ["batch:a", "batch:b"]
    assert all(len(r["serials"]) == 2 for r in single["results"])

    first, second = out["several"]
    assert (first["successCount"], first["failureCount"]) == (1, 0)
    assert (second["successCount"], second["failureCount"]) == (1, 1)
    failed = next(r for r in second["results"] if "error" in r)
    assert failed["channel"] == ":bad"
    assert failed["error"]["code"] == 40010

    assert out["historyA"] == ["one", {"k": 1}, "two"]
    assert out["historyB"] == ["one", {"k": 1}, "three"]


async def test_batch_presence_returns_the_members_of_each_channel(
    run_node: RunNode, fmt: str
) -> None:
    out = await run_node("batch.mjs", format=fmt, args={"a": "batchp:a", "b": "batchp:b"})
    presence = out["presence"]
    assert (presence["successCount"], presence["failureCount"]) == (2, 1)
    by_channel = {r["channel"]: r for r in presence["results"]}
    assert [(m["clientId"], m["data"]) for m in by_channel["batchp:a"]["presence"]] == [
        ("carol", "here")
    ]
    assert by_channel["batchp:b"]["presence"] == []
    assert by_channel[":bad"]["error"]["code"] == 40010
