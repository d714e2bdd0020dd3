"""Presence is cluster-wide, with unmodified ably-js on three relay processes over one PostgreSQL:
members entered through nodes A, B and C are listed by presence.get() and in the SYNC on every
node; when node B is SIGKILLed, a surviving node announces B's member leaving to the subscribers
on A and C once B's lease and the presence grace have run out, and A's and C's members stay."""

from __future__ import annotations

import time
from pathlib import Path

from continuity_support import NodeProcess, RelayProcess, start_cluster

# Short timers, with room for a loaded machine: heartbeats every second, a node silent for
# 3 s + 2 s of grace is gone.
MAX_IDLE_MS = 3000
GRACE_MS = 2000


async def test_a_killed_nodes_members_leave_everywhere_and_the_others_stay(
    tmp_path: Path,
    postgres_url: str,
    processes: list[RelayProcess],
    nodes: list[NodeProcess],
) -> None:
    a, b, c = await start_cluster(
        tmp_path,
        postgres_url,
        processes,
        "--max-idle-interval",
        str(MAX_IDLE_MS),
        "--presence-grace",
        str(GRACE_MS),
    )
    script = await NodeProcess.start(
        "presence_cluster_kill.mjs",
        port=a.port,
        args={"channel": "lobby", "ports": {"a": a.port, "b": b.port, "c": c.port}},
        deadline=60,
    )
    nodes.append(script)
    await script.wait_event(lambda e: e.get("ev") == "ready", within=40)
    b.kill()
    await b.proc.wait()
    killed = time.monotonic()
    result = await script.finish(within=40)
    took = time.monotonic() - killed

    members = {"alice": "alice via a", "bob": "bob via b", "carol": "carol via c"}
    for who, listed in result["before"].items():
        assert {m["clientId"]: m["data"] for m in listed} == members, who
    before = {m["clientId"]: m["connectionId"] for m in result["before"]["observerA"]}
    for who, listed in result["after"].items():
        # The same members on the same connections: A's and C's were not touched.
        assert {m["clientId"]: m["connectionId"] for m in listed} == {
            "alice": before["alice"],
            "carol": before["carol"],
        }, who
    for who, events in result["events"].items():
        changes = [(e["action"], e["clientId"]) for e in events if e["action"] != "present"]
        assert changes == [("leave", "bob")], (who, events)
    # Not before B's lease and the grace could have run out (the leave is not B's own): its
    # last heartbeat was at most a heartbeat interval (a third of the lease) before the kill.
    assert took >= (MAX_IDLE_MS * 2 / 3 + GRACE_MS) / 1000 - 0.2, took
