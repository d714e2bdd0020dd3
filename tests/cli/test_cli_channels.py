"""`relay channels ...` against a real relay: what a person sees and what a script reads."""

from __future__ import annotations

import asyncio
import json

from cli_support import RunCli, StartCli

from channel_relay.client import Realtime
from channel_relay.server import Relay


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


async def test_publish_then_history_shows_the_messages_with_their_serials(cli: RunCli) -> None:
    first = await cli("channels", "publish", "cli:h", "greet", '{"hello":"world"}', "--json")
    assert first.code == 0, first.err
    more = await cli("channels", "publish", "cli:h", "tick", "plain text", "--count", "3", "--json")
    serials = json.loads(first.out)["serials"] + json.loads(more.out)["serials"]
    assert len(serials) == 4

    forwards = await cli("channels", "history", "cli:h", "--direction", "forwards", "--json")
    assert forwards.code == 0, forwards.err
    messages = _lines(forwards.out)
    assert [m["serial"] for m in messages] == serials
    assert messages[0]["data"] == {"hello": "world"}
    assert [m["data"] for m in messages[1:]] == ["plain text"] * 3

    latest = await cli("channels", "history", "cli:h", "--limit", "2", "--json")
    assert [m["serial"] for m in _lines(latest.out)] == serials[:1:-1]

    table = await cli("channels", "history", "cli:h")
    assert "greet" in table.out and serials[0] in table.out and "message.create" in table.out


async def test_channels_list_shows_the_apps_channels_with_occupancy(
    cli: RunCli, relay: Relay
) -> None:
    for name in ("list:a", "list:b", "other:c"):
        assert (await cli("channels", "publish", name, "m", "x")).code == 0
    async with Realtime(relay.default_key, url=f"http://127.0.0.1:{relay.port}") as client:
        await client.channels.get("list:b").attach()
        listed = await cli("channels", "list", "--prefix", "list:", "--json")
        assert listed.code == 0, listed.err
        details = {d["channelId"]: d["status"] for d in json.loads(listed.out)}
        assert sorted(details) == ["list:a", "list:b"]
        assert details["list:b"]["isActive"] is True
        assert details["list:b"]["occupancy"]["metrics"]["connections"] == 1

        occupancy = await cli("channels", "occupancy", "list:b", "--json")
        assert json.loads(occupancy.out)["status"]["occupancy"]["metrics"]["subscribers"] == 1

        table = await cli("channels", "list")
        assert all(name in table.out for name in ("list:a", "list:b", "other:c"))


async def test_subscribe_prints_live_messages_after_the_rewound_ones(
    cli: RunCli, cli_live: StartCli
) -> None:
    for data in ("old1", "old2"):
        await cli("channels", "publish", "cli:live", "m", data)
    tail = await cli_live("channels", "subscribe", "cli:live", "--rewind", "1", "--json")
    await tail.note("attached to cli:live")
    assert json.loads(await tail.line())["data"] == "old2"

    await cli("channels", "publish", "cli:live", "m", '{"n":1}')
    live = json.loads(await tail.line())
    assert (live["name"], live["data"]) == ("m", {"n": 1})
    assert await tail.interrupt() == 0


async def test_tail_stops_after_count_messages(cli: RunCli, cli_live: StartCli) -> None:
    tail = await cli_live("channels", "tail", "cli:count", "--count", "2")
    await tail.note("attached")
    for data in ("one", "two", "three"):
        await cli("channels", "publish", "cli:count", "m", data)
    async with asyncio.timeout(20):
        assert await tail.proc.wait() == 0
    assert tail.proc.stdout is not None
    text = (await tail.proc.stdout.read()).decode()
    assert "one" in text and "two" in text and "three" not in text


async def test_presence_lists_members_and_watches_them_come_and_go(
    cli: RunCli, cli_live: StartCli, relay: Relay
) -> None:
    url = f"http://127.0.0.1:{relay.port}"
    async with Realtime(relay.default_key, url=url, client_id="alice") as alice:
        await alice.channels.get("cli:p").presence.enter({"mood": "ok"})
        members = await cli("channels", "presence", "cli:p", "--json")
        assert members.code == 0, members.err
        assert [(m["clientId"], m["data"]) for m in json.loads(members.out)] == [
            ("alice", {"mood": "ok"})
        ]

        watch = await cli_live("channels", "presence", "cli:p", "--watch", "--json")
        await watch.note("watching presence")
        async with Realtime(relay.default_key, url=url, client_id="bob") as bob:
            await bob.channels.get("cli:p").presence.enter("hi")
            events = [json.loads(await watch.line())]
            while events[-1]["clientId"] != "bob":
                events.append(json.loads(await watch.line()))
            assert (events[-1]["action"], events[-1]["data"]) == ("enter", "hi")
        left = json.loads(await watch.line())
        assert (left["action"], left["clientId"]) == ("leave", "bob")
        assert await watch.interrupt() == 0
