"""Presence (issue 5) with the unmodified ably-js: who is on a channel, live and across devices.

Each test drives scripts/presence_*.mjs. Tests that break connections on purpose run a relay of
their own with short timers (`make_relay`) and steer node through a TCP proxy
(continuity_support.TcpProxy) that can refuse reconnections for a while, reading node's progress
from its `EVENT` lines (continuity_support.NodeProcess).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from continuity_support import KEY, NodeProcess, StartProxy, TcpProxy, find_connection, free_port
from interop_support import ConnectRaw, RunNode, b64, connect_raw

from channel_relay.auth.capability import Capability
from channel_relay.auth.keys import ApiKey
from channel_relay.config import Settings
from channel_relay.server import Relay

# ably-js through both engines (tests/conftest.py).
ENGINES = ["sqlite", "postgresql"]

GRACE_MS = 1500
MakeRelay = Callable[..., Awaitable[Relay]]


@pytest.fixture
async def make_relay(tmp_path: Path) -> AsyncIterator[MakeRelay]:
    """make_relay(**settings) -> a started relay (like conftest's `relay`) with other Settings;
    every relay made is stopped at teardown."""
    made: list[Relay] = []

    async def make(**settings: Any) -> Relay:
        options: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": 0,
            "db_path": str(tmp_path / "presence.db"),
            "keys": [KEY],
            **settings,
        }
        server = Relay(Settings(**options))
        made.append(server)
        await server.start()
        return server

    yield make
    for server in made:
        await server.stop()


async def _start(
    nodes: list[NodeProcess],
    script: str,
    port: int,
    deadline: float,
    fmt: str = "msgpack",
    **args: Any,
) -> NodeProcess:
    node = await NodeProcess.start(script, port=port, args=args, deadline=deadline, format=fmt)
    nodes.append(node)
    return node


async def _rest(relay: Relay, path: str, key: str = KEY) -> Any:
    """GET a REST path of `relay` as JSON (the relay's own view, independent of ably-js)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            relay.url + path,
            headers={"Authorization": "Basic " + b64(key.encode()), "Accept": "application/json"},
        ) as resp,
    ):
        assert resp.status == 200, f"GET {path}: {resp.status} {await resp.text()}"
        return await resp.json()


def _data(wire: dict[str, Any]) -> Any:
    """A wire (REST JSON) presence message's data, decoded as an SDK would."""
    if wire.get("encoding") == "json":
        return json.loads(wire["data"])
    assert not wire.get("encoding"), wire
    return wire.get("data")


# Three clients, two of them one user on two devices.


async def test_every_device_sees_the_same_members_enter_update_and_leave(
    run_node: RunNode, fmt: str
) -> None:
    result = await run_node("presence_devices.mjs", format=fmt, args={"channel": "room:devices"})
    ids = result["ids"]
    phone, laptop, bob = ids["phone"], ids["laptop"], ids["bob"]
    assert len({phone, laptop, bob}) == 3

    entered = [
        {"clientId": "alice", "connectionId": phone, "data": {"device": "phone"}},
        {"clientId": "alice", "connectionId": laptop, "data": {"device": "laptop"}},
        {"clientId": "bob", "connectionId": bob, "data": "bob here"},
    ]
    by_key = lambda ms: sorted(ms, key=lambda m: f"{m['clientId']}:{m['connectionId']}")  # noqa: E731
    for who, members in result["sets"]["entered"].items():
        assert by_key(members) == by_key(entered), f"{who} after the enters"
    updated = [dict(m) for m in entered]
    updated[0]["data"] = {"device": "phone", "status": "away"}
    for who, members in result["sets"]["updated"].items():
        assert by_key(members) == by_key(updated), f"{who} after the update"
    for who, members in result["sets"]["left"].items():
        assert by_key(members) == by_key([updated[0], updated[2]]), f"{who} after the leave"
    assert result["aliceOnly"] == {"phone": 1, "laptop": 1, "bob": 1}

    # Each client, the actors included, saw the same events in the same order, with the
    # publisher's connectionId and an id prefixed by it (not synthesized).
    expected = [
        ("enter", "alice", phone),
        ("enter", "alice", laptop),
        ("enter", "bob", bob),
        ("update", "alice", phone),
        ("leave", "alice", laptop),
    ]
    for who, events in result["events"].items():
        got = [(e["action"], e["clientId"], e["connectionId"]) for e in events]
        assert got == expected, f"events seen by {who}"
        for e in events:
            assert e["id"].startswith(e["connectionId"] + ":"), e
            assert isinstance(e["timestamp"], int) and e["timestamp"] > 0


# A dropped connection: its members stay for the grace period, then leave unless it resumed.


async def _drop(relay: Relay, proxy: TcpProxy, node: NodeProcess, refuse_for: float) -> float:
    """Once node is ready, abort the dropper's socket on the relay and refuse reconnections for
    `refuse_for` seconds (in the background); the drop time in ms since the epoch."""
    ready = await node.wait_event(lambda e: e.get("ev") == "ready")
    connection = find_connection(relay, "dropper")
    assert connection is not None and connection.connection_id == ready["dropperId"]
    assert connection.writer is not None
    proxy.refuse = True
    dropped_at = time.time() * 1000
    connection.writer.abort()

    async def reopen() -> None:
        await asyncio.sleep(refuse_for)
        proxy.refuse = False

    reopening = asyncio.create_task(reopen())
    _background.add(reopening)
    reopening.add_done_callback(_background.discard)
    return dropped_at


_background: set[asyncio.Task[None]] = set()


def _members_at(snapshots: list[dict[str, Any]], at: float) -> list[str]:
    """The observer's presence.get() keys as last polled at or before `at`."""
    before = [s for s in snapshots if s["at"] <= at]
    assert before, f"no snapshot before {at}"
    return list(before[-1]["keys"])


async def _dropper_scenario(
    make_relay: MakeRelay,
    proxies: StartProxy,
    nodes: list[NodeProcess],
    tmp_path: Path,
    fmt: str,
    mode: str,
    refuse_for: float,
    **args: Any,
) -> tuple[float, list[dict[str, Any]], dict[str, Any]]:
    """Run presence_drop.mjs in `mode`; (drop time, the relay's members once node has settled,
    node's result)."""
    relay = await make_relay(presence_grace=GRACE_MS)
    proxy = await proxies(relay.port)
    channel = f"room:drop-{mode}"
    release = tmp_path / "release"
    node = await _start(
        nodes,
        "presence_drop.mjs",
        relay.port,
        20.0,
        fmt,
        channel=channel,
        proxyPort=proxy.port,
        mode=mode,
        release=str(release),
        **args,
    )
    dropped_at = await _drop(relay, proxy, node, refuse_for)
    path = f"/channels/{channel.replace(':', '%3A')}/presence"
    # Half-way through the grace period the relay still lists the member.
    await asyncio.sleep(GRACE_MS / 2000)
    members = await _rest(relay, path)
    assert [m["clientId"] for m in members] == ["dropper"], members
    await node.wait_event(lambda e: e.get("ev") == "settled", within=15.0)
    members = await _rest(relay, path)
    history = await _rest(relay, path + "/history?direction=forwards")
    release.touch()
    result = await node.finish(within=10.0)
    # Presence history is what subscribers saw: an SDK's re-entry of a member that is still
    # present (ably-js re-enters on every reattach, RTP17i) is no event and is not recorded.
    seen = [e for e in result["events"] if e["clientId"] == "dropper"]
    assert [(h["action"], h["id"], h["timestamp"]) for h in history] == [
        (_ACTIONS[e["action"]], e["id"], e["timestamp"]) for e in seen
    ]
    return dropped_at, members, result


def _reattached(result: dict[str, Any]) -> list[bool]:
    """`resumed` of each ATTACHED the dropper's channel got after the drop."""
    return [c["resumed"] for c in result["channelChanges"] if c["current"] == "attached"][1:]


_ACTIONS = {"absent": 0, "present": 1, "enter": 2, "leave": 3, "update": 4}


async def test_dropped_connections_members_leave_after_the_grace_period_and_not_before(
    make_relay: MakeRelay,
    proxies: StartProxy,
    nodes: list[NodeProcess],
    tmp_path: Path,
    fmt: str,
) -> None:
    dropped_at, members, result = await _dropper_scenario(
        make_relay, proxies, nodes, tmp_path, fmt, "expire", refuse_for=30.0
    )
    assert members == []
    dropper = f"dropper:{result['dropperId']}"
    assert dropper in _members_at(result["snapshots"], dropped_at + GRACE_MS / 2)
    leaves = [e for e in result["events"] if e["action"] == "leave"]
    assert len(leaves) == 1, result["events"]
    leave = leaves[0]
    waited = leave["at"] - dropped_at
    assert GRACE_MS - 50 <= waited <= GRACE_MS + 1000, f"leave seen {waited:.0f} ms after the drop"
    # Synthesized by the relay: an id the SDK cannot mistake for the member's own leave.
    assert leave["connectionId"] == result["dropperId"]
    assert not leave["id"].startswith(result["dropperId"])
    assert leave["data"] == {"status": "here"}
    assert dropper not in result["snapshots"][-1]["keys"]
    assert all(m["clientId"] != "dropper" for m in result["observerSees"])
    # Nothing else happened to the member: it neither re-entered nor left twice.
    assert [e["action"] for e in result["events"] if e["clientId"] == "dropper"] == [
        "enter",
        "leave",
    ]


async def test_a_connection_that_resumes_within_the_grace_period_keeps_its_members(
    make_relay: MakeRelay,
    proxies: StartProxy,
    nodes: list[NodeProcess],
    tmp_path: Path,
    fmt: str,
) -> None:
    dropped_at, members, result = await _dropper_scenario(
        make_relay,
        proxies,
        nodes,
        tmp_path,
        fmt,
        "resume",
        refuse_for=0.5,
        retryMs=200,
        holdMs=GRACE_MS + 500,
    )
    assert result["dropperIdAfter"] == result["dropperId"], "the dropper must have resumed"
    assert _reattached(result) == [True], "the dropper's channel must resume"
    dropper = f"dropper:{result['dropperId']}"
    assert result["snapshots"][-1]["at"] >= dropped_at + GRACE_MS + 300
    for snapshot in result["snapshots"]:
        assert dropper in snapshot["keys"], snapshot
    assert [e["action"] for e in result["events"] if e["clientId"] == "dropper"] == ["enter"]
    assert [(m["clientId"], m["connectionId"]) for m in result["observerSees"]] == [
        ("dropper", result["dropperId"])
    ]
    assert [m["clientId"] for m in result["dropperSees"]] == ["dropper"]
    assert [(m["clientId"], m["connectionId"]) for m in members] == [
        ("dropper", result["dropperId"])
    ]


async def test_after_the_grace_period_a_resumed_client_re_enters_its_members(
    make_relay: MakeRelay,
    proxies: StartProxy,
    nodes: list[NodeProcess],
    tmp_path: Path,
    fmt: str,
) -> None:
    dropped_at, members, result = await _dropper_scenario(
        make_relay,
        proxies,
        nodes,
        tmp_path,
        fmt,
        "reenter",
        refuse_for=GRACE_MS / 1000 + 1.0,
        retryMs=200,
    )
    assert result["dropperIdAfter"] == result["dropperId"], "the dropper must have resumed"
    # The connection resumed, but the relay dropped its member: the channel is not RESUMED.
    assert _reattached(result) == [False]
    dropper_events = [e for e in result["events"] if e["clientId"] == "dropper"]
    assert [e["action"] for e in dropper_events] == ["enter", "leave", "enter"], dropper_events
    leave, again = dropper_events[1], dropper_events[2]
    assert leave["at"] - dropped_at >= GRACE_MS - 50
    assert again["connectionId"] == result["dropperId"]
    assert again["data"] == {"status": "here"}
    assert [(m["clientId"], m["connectionId"]) for m in result["observerSees"]] == [
        ("dropper", result["dropperId"])
    ]
    assert [(m["clientId"], _data(m)) for m in members] == [("dropper", {"status": "here"})]


# SYNC: a late joiner gets every member, over several pages.

SYNC = 16  # ProtocolMessage action
HAS_PRESENCE = 1 << 0


async def test_a_late_joiner_gets_every_member_through_a_sync_of_many_pages(
    make_relay: MakeRelay, nodes: list[NodeProcess], tmp_path: Path, fmt: str
) -> None:
    page, count = 10, 35
    relay = await make_relay(sync_page_size=page)
    release = tmp_path / "release"
    node = await _start(
        nodes,
        "presence_sync.mjs",
        relay.port,
        25.0,
        fmt,
        channel="room:sync",
        count=count,
        release=str(release),
    )
    await node.wait_event(lambda e: e.get("ev") == "settled", within=20.0)
    # What went over the wire: HAS_PRESENCE, then pages of at most `page` PRESENT members,
    # "syncId:cursor" serials with one syncId, the last page with an empty cursor.
    client, _ = await connect_raw(relay.port, KEY, fmt)
    try:
        attached = await client.attach("room:sync")
        assert attached["flags"] & HAS_PRESENCE
        pages = [await client.recv_action(SYNC)]
        while not pages[-1]["channelSerial"].endswith(":"):
            pages.append(await client.recv_action(SYNC))
    finally:
        await client.close()
        release.touch()
    result = await node.finish(within=10.0)

    assert len(pages) == -(-count // page)
    sync_ids = {p["channelSerial"].split(":")[0] for p in pages}
    assert len(sync_ids) == 1 and all(pages[i]["channelSerial"] != ":" for i in range(len(pages)))
    assert [len(p["presence"]) for p in pages] == [10, 10, 10, 5]
    assert all(m["action"] == 1 for p in pages for m in p["presence"])
    assert sorted(m["clientId"] for p in pages for m in p["presence"]) == [
        f"member-{i:03d}" for i in range(count)
    ]

    expected = [
        {"clientId": f"member-{i:03d}", "connectionId": result["entererId"], "data": {"i": i}}
        for i in range(count)
    ]
    for format, seen in result["late"].items():
        assert seen["members"] == expected, f"{format} late joiner's presence.get()"
        assert seen["presentEvents"] == count and seen["actions"] == ["present"], format


# REST presence and presence history agree with what realtime clients saw.


async def test_rest_presence_and_presence_history_agree_with_realtime(
    run_node: RunNode, fmt: str
) -> None:
    result = await run_node("presence_rest.mjs", format=fmt, args={"channel": "room:rest"})
    ids = result["ids"]
    live = result["live"]
    assert [(e["action"], e["clientId"], e["connectionId"]) for e in live] == [
        ("enter", "alice", ids["alice1"]),
        ("enter", "alice", ids["alice2"]),
        ("enter", "bob", ids["bob"]),
        ("update", "bob", ids["bob"]),
        ("enter", "carol", ids["carol"]),
        ("leave", "carol", ids["carol"]),
    ]
    assert [e["data"] for e in live] == ["a1", "a2", {"mood": "ok"}, {"mood": "great"}, "c", "bye"]

    everyone = sorted(
        [
            {"clientId": "alice", "connectionId": ids["alice1"], "data": "a1"},
            {"clientId": "alice", "connectionId": ids["alice2"], "data": "a2"},
            {"clientId": "bob", "connectionId": ids["bob"], "data": {"mood": "great"}},
        ],
        key=lambda m: f"{m['clientId']}:{m['connectionId']}",
    )
    resort = lambda ms: sorted(ms, key=lambda m: f"{m['clientId']}:{m['connectionId']}")  # noqa: E731
    for view in ("realtime", "rest"):
        got = result[view]
        assert resort(got["all"]) == everyone, view
        assert resort(got["alice"]) == [m for m in everyone if m["clientId"] == "alice"], view
        assert got["byConnection"] == [m for m in everyone if m["connectionId"] == ids["alice2"]]

    # History is every event, as delivered live (same ids, timestamps and data), in both orders,
    # and a page boundary loses or repeats nothing.
    forwards = [m for page in result["history"]["forwards"] for m in page["items"]]
    backwards = [m for page in result["history"]["backwards"] for m in page["items"]]
    realtime_backwards = [
        m for page in result["history"]["realtimeBackwards"] for m in page["items"]
    ]
    assert [len(p["items"]) for p in result["history"]["forwards"]] == [2, 2, 2]
    assert [len(p["items"]) for p in result["history"]["backwards"]] == [4, 2]
    assert forwards == live
    assert backwards == live[::-1]
    assert realtime_backwards == live[::-1]
    assert [p["hasNext"] for p in result["history"]["forwards"]][:2] == [True, True]


async def test_rest_presence_with_a_small_limit_pages_through_every_member(
    run_node: RunNode,
) -> None:
    result = await run_node("presence_rest.mjs", args={"channel": "room:rest-limit"})
    limited = result["rest"]["limited"]
    assert sum(len(p["items"]) for p in limited) == 3, limited


# Refusals.


async def test_presence_refusals_carry_ablys_error_codes_and_change_nothing(
    run_node: RunNode, relay: Relay, fmt: str
) -> None:
    limited = "app1.limited:s"
    relay.apps.add([ApiKey.parse(limited, Capability.parse({"*": ["subscribe", "publish"]}))])
    result = await run_node(
        "presence_errors.mjs", format=fmt, args={"channel": "room:errors", "limitedKey": limited}
    )
    # Entering with no clientId: ably-js refuses enter() itself; the relay refuses the rest.
    codes = {
        case: (result[case]["code"], result[case]["statusCode"])
        for case in ("anonymousEnter", "anonymousEnterClient", "limitedEnter", "spoofedEnterClient")
    }
    assert codes == {
        "anonymousEnter": (40012, 400),  # ably-js itself, before sending
        "anonymousEnterClient": (91000, 400),
        "limitedEnter": (40160, 401),
        "spoofedEnterClient": (40012, 400),
    }
    for who in ("anonymousAfter", "limitedAfter", "aliceAfter"):
        assert result[who] == {"connection": "connected", "channel": "attached"}, who
    assert result["aliceEnter"] == {"resolved": {"type": "undefined"}}
    assert result["members"] == [
        {"clientId": "alice", "connectionId": result["aliceId"], "data": "me"}
    ]
    assert [(e["action"], e["clientId"]) for e in result["observed"]] == [("enter", "alice")]


async def test_entering_presence_without_a_clientid_is_refused_on_the_wire(
    raw: ConnectRaw,
) -> None:
    """The relay's side of 91000 for any SDK: a PRESENCE with no clientId from an anonymous
    connection is NACKed, and the member set stays empty."""
    client = await raw("json")
    attached = await client.attach("room:raw")
    assert attached["action"] == 11
    await client.send(
        {
            "action": 14,
            "channel": "room:raw",
            "msgSerial": 0,
            "presence": [{"action": 2, "data": "x"}],
        }
    )
    nack = await client.recv_action(1, 2)
    assert nack["action"] == 2 and nack["msgSerial"] == 0
    assert (nack["error"]["code"], nack["error"]["statusCode"]) == (91000, 400)


# Occupancy.


def _metrics(
    connections: int,
    publishers: int,
    subscribers: int,
    presence_connections: int,
    presence_members: int,
    presence_subscribers: int,
) -> dict[str, int]:
    return {
        "connections": connections,
        "publishers": publishers,
        "subscribers": subscribers,
        "presenceConnections": presence_connections,
        "presenceMembers": presence_members,
        "presenceSubscribers": presence_subscribers,
    }


async def test_channel_status_counts_connections_members_and_subscribers(
    run_node: RunNode, fmt: str
) -> None:
    """Ably's definitions: connections attached; publishers/subscribers/presenceSubscribers are
    attachments with that mode; presenceConnections are attachments allowed to enter (PRESENCE
    mode), entered or not; presenceMembers are the members."""
    result = await run_node("presence_occupancy.mjs", format=fmt, args={"channel": "room:occ"})
    # Attached: subOnly (S), presSub (PS), pubOnly (P), idle, multi and alice (defaults: P, S,
    # PRESENCE, PS); members m1, m2 (multi) and alice.
    expected = {
        "all": _metrics(6, 4, 4, 3, 3, 4),
        "aliceLeft": _metrics(6, 4, 4, 3, 2, 4),
        "multiClosed": _metrics(5, 3, 3, 2, 0, 3),
        "subDetached": _metrics(4, 3, 2, 2, 0, 3),
    }
    for stage, metrics in expected.items():
        status = result[stage]
        assert status["channelId"] == "room:occ"
        assert status["status"]["isActive"] is True
        assert status["status"]["occupancy"]["metrics"] == metrics, stage


# Relay restart.


async def test_members_reappear_after_a_relay_restart(
    make_relay: MakeRelay, nodes: list[NodeProcess], tmp_path: Path, fmt: str
) -> None:
    """The connections resume on the restarted relay (same connectionIds: their state is in the
    database), but its members were in the old process's memory: the members' reattach is not
    RESUMED, so ably-js re-enters them (RTP17i). The observer reconnects first, before anyone
    has re-entered: its set must still end up with exactly the two members."""
    port = free_port()
    relay = await make_relay(port=port)
    release = tmp_path / "release"
    node = await _start(
        nodes,
        "presence_restart.mjs",
        port,
        30.0,
        fmt,
        channel="room:restart",
        release=str(release),
        retry={"observer": 100, "alice": 1500, "bob": 1500},
    )
    await node.wait_event(lambda e: e.get("ev") == "ready")
    await relay.stop()
    await asyncio.sleep(0.3)
    relay = await make_relay(port=port)
    await node.wait_event(lambda e: e.get("ev") == "settled", within=20.0)
    members = await _rest(relay, "/channels/room%3Arestart/presence")
    release.touch()
    result = await node.finish(within=10.0)

    after = result["after"]
    assert after == result["before"], "the connections resume"
    expected = sorted(
        [
            {"clientId": "alice", "connectionId": after["alice"], "data": "a"},
            {"clientId": "bob", "connectionId": after["bob"], "data": "b"},
        ],
        key=lambda m: f"{m['clientId']}:{m['connectionId']}",
    )
    for who, seen in result["sets"].items():
        assert seen == expected, f"{who}'s presence.get() after the restart"
    assert sorted((m["clientId"], m["connectionId"]) for m in members) == [
        ("alice", after["alice"]),
        ("bob", after["bob"]),
    ]


async def test_a_connection_closed_right_after_entering_leaves_no_member_behind(
    relay: Relay,
) -> None:
    """CLOSE arriving while the enter is still being stored: the member must still leave."""
    client, first = await connect_raw(relay.port, KEY, "json", clientId="hasty")
    assert first["action"] == 4
    await client.attach("room:hasty")
    await client.send(
        {"action": 14, "channel": "room:hasty", "msgSerial": 0, "presence": [{"action": 2}]}
    )
    await client.send({"action": 7})
    await client.recv_action(8)
    await client.close()
    for _ in range(100):
        history = await _rest(relay, "/channels/room%3Ahasty/presence/history?direction=forwards")
        if len(history) >= 2:
            break
        await asyncio.sleep(0.01)
    assert [h["action"] for h in history] == [2, 3]
    assert await _rest(relay, "/channels/room%3Ahasty/presence") == []
