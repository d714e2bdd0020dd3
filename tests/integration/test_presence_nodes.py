"""Presence lives in the store with the node serving each member: a node that did not see a
member enter (here, the relay restarted as another node on the same database) has it in SYNC
and REST presence, and once the member's node has been silent for a lease plus the grace
period, the surviving node announces its leave."""

from __future__ import annotations

import base64
from pathlib import Path

import aiohttp
from raw_client import connect_raw

from channel_relay.config import Settings
from channel_relay.server import Relay

APP_KEY = "app1.key1:secret1"
ATTACH, ATTACHED, PRESENCE, SYNC = 10, 11, 14, 16
HAS_PRESENCE = 1 << 0
ENTER, LEAVE = 2, 3


def _node(db: Path) -> Relay:
    """A relay with short timers: heartbeats every 200 ms, a lease of 600 ms, 300 ms grace."""
    return Relay(
        Settings(
            host="127.0.0.1",
            port=0,
            db_path=str(db),
            keys=[APP_KEY],
            max_idle_interval=600,
            presence_grace=300,
        )
    )


async def _rest_presence(relay: Relay, channel: str) -> list[dict[str, object]]:
    auth = "Basic " + base64.b64encode(APP_KEY.encode()).decode()
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{relay.url}/channels/{channel}/presence", headers={"Authorization": auth}) as r,
    ):
        assert r.status == 200
        return await r.json()


async def test_a_member_entered_on_one_node_is_present_on_another_and_leaves_when_it_dies(
    tmp_path: Path,
) -> None:
    db = tmp_path / "relay.db"
    first = _node(db)
    await first.start()
    alice, _ = await connect_raw(first.port, APP_KEY, "json", clientId="alice")
    await alice.attach("room")
    await alice.send(
        {"action": PRESENCE, "channel": "room", "msgSerial": 0, "presence": [{"action": ENTER}]}
    )
    await alice.recv_action(1)
    first_node = first.realtime.node_id
    # The first node goes away; alice never comes back.
    await first.stop()
    await alice.close()

    second = _node(db)
    await second.start()
    try:
        assert second.realtime.node_id != first_node
        members = await _rest_presence(second, "room")
        assert [m["clientId"] for m in members] == ["alice"]
        observer, _ = await connect_raw(second.port, APP_KEY, "json", clientId="observer")
        await observer.send({"action": ATTACH, "channel": "room"})
        attached = await observer.recv_action(ATTACHED)
        assert attached["flags"] & HAS_PRESENCE
        sync = await observer.recv_action(SYNC)
        assert [m["clientId"] for m in sync["presence"]] == ["alice"]
        # Announced by the surviving node once the first one's lease and the grace ran out.
        left = await observer.recv_action(PRESENCE, within=15)
        assert [(m["clientId"], m["action"]) for m in left["presence"]] == [("alice", LEAVE)]
        assert await _rest_presence(second, "room") == []
        await observer.close()
    finally:
        await second.stop()
