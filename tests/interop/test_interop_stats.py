"""Live stats counted by the relay itself (issue 16), read through ably-js 2.28's stats()."""

from __future__ import annotations

from interop_support import RunNode

ENGINES = ["sqlite", "postgresql"]


async def test_stats_of_the_current_interval_count_what_happened(
    run_node: RunNode, fmt: str
) -> None:
    out = await run_node("stats_live.mjs", format=fmt, args={"channel": f"stats-{fmt}"})
    for item in (out["minute"], out["hour"]):
        assert isinstance(item["inProgress"], str)
        assert isinstance(item["appId"], str) and isinstance(item["schema"], str)
    assert out["minute"]["unit"] == "minute" and out["hour"]["unit"] == "hour"
    entries = out["hour"]["entries"]
    assert entries["messages.inbound.all.messages.count"] == 3
    assert entries["messages.inbound.all.messages.data"] == len(
        "a" + "xxxx" + "b" + "yy" + "c" + "z"
    ) + len('{"ephemeral":true}')
    # One subscriber: each message went out once more.
    assert entries["messages.outbound.all.messages.count"] == 3
    assert entries["messages.all.messages.count"] == 6
    # The ephemeral message is not stored.
    assert entries["messages.persisted.messages.count"] == 2
    # One presence enter, delivered to its own (presence-subscribed) connection.
    assert entries["messages.inbound.all.presence.count"] == 1
    assert entries["messages.outbound.all.presence.count"] == 1
    assert entries["messages.inbound.all.all.count"] == 4
    assert entries["connections.all.opened"] >= 1
    assert entries["connections.all.peak"] >= 1
    assert entries["channels.opened"] == 1
