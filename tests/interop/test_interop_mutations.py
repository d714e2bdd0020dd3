"""Mutable messages through the unmodified ably-js 2.28: updateMessage / deleteMessage /
appendMessage / getMessage / getMessageVersions over realtime and REST in both formats, append
types and sizes, channel rules (93002), ownership capabilities, ephemeral messages, first sight
of a streamed message (attach mid-stream, rewind, resume) and a burst of concurrent streams.

Scripts: scripts/mutations_*.mjs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from interop_support import RunNode, rest_history

from channel_relay.auth.capability import Capability
from channel_relay.auth.keys import ApiKey
from channel_relay.channels.rules import ChannelRules

# ably-js through both engines (tests/conftest.py).
ENGINES = ["sqlite", "postgresql"]

if TYPE_CHECKING:
    from channel_relay.server import Relay

VIAS = ["realtime", "rest"]


def _version(message: dict[str, Any]) -> str:
    version: str = message["version"]["serial"]
    return version


@pytest.mark.parametrize("via", VIAS)
async def test_round_trip_update_append_delete_get_versions(
    run_node: RunNode, fmt: str, via: str
) -> None:
    result = await run_node(
        "mutations_roundtrip.mjs", format=fmt, args={"channel": f"mut:rt-{via}", "via": via}
    )
    serial = result["serial"]
    a1, a2, upd, dele = result["versionSerials"]
    # Version serials are minted in channel order, all after the message's own serial.
    assert serial < a1 < a2 < upd < dele

    after_append = result["afterAppend"]
    assert after_append["serial"] == serial
    assert after_append["action"] == "message.update"
    assert after_append["data"] == {"type": "string", "value": "Hello, world"}
    assert after_append["name"] == "doc" and after_append["clientId"] == "writer"
    # An append replaces extras with its own (the second append carried them).
    assert after_append["extras"] == {"headers": {"step": "append"}}
    assert _version(after_append) == a2

    after_update = result["afterUpdate"]
    assert after_update["action"] == "message.update"
    assert after_update["name"] == "doc2"
    assert after_update["data"] == {"type": "string", "value": "Hello, world!"}
    assert after_update["version"]["serial"] == upd
    assert after_update["version"]["description"] == "fix typo"
    assert after_update["version"]["metadata"] == {"reason": "typo"}
    assert after_update["version"]["clientId"] == "writer"
    # Timestamp and id stay the original message's.
    assert after_update["timestamp"] == after_append["timestamp"]
    assert after_update["id"] == after_append["id"]

    # Versions come oldest first, the original message leading, as Ably answers them.
    versions = result["versions"]
    assert [_version(v) for v in versions] == [serial, a1, a2, upd]
    assert [v["action"] for v in versions] == [
        "message.create",
        "message.append",
        "message.append",
        "message.update",
    ]
    assert versions[0]["data"] == {"type": "string", "value": "Hello"}
    assert versions[2]["data"] == {"type": "string", "value": "ld"}

    # Delete: a new version with the delete action; fields it does not carry are kept.
    after_delete = result["afterDelete"]
    assert after_delete["action"] == "message.delete"
    assert after_delete["version"]["serial"] == dele
    assert after_delete["version"]["description"] == "gone"
    assert after_delete["serial"] == serial and after_delete["name"] == "doc2"

    live = result["live"]
    assert [m["action"] for m in live] == [
        "message.create",
        "message.append",
        "message.append",
        "message.update",
        "message.delete",
    ]
    assert {m["serial"] for m in live} == {serial}
    assert [_version(m) for m in live] == [serial, a1, a2, upd, dele]
    assert [m["data"].get("value") for m in live[:3]] == ["Hello", ", wor", "ld"]
    assert live[1]["name"] == "doc" and live[1]["extras"] is None
    assert live[3]["data"]["value"] == "Hello, world!"

    [stored] = result["history"]
    assert stored["serial"] == serial and stored["action"] == "message.delete"
    assert _version(stored) == dele
    assert result["missing"]["code"] == 40400 and result["missing"]["statusCode"] == 404


@pytest.mark.parametrize("via", VIAS)
async def test_append_types_and_aggregate_size(run_node: RunNode, fmt: str, via: str) -> None:
    result = await run_node(
        "mutations_append_types.mjs",
        format=fmt,
        args={"channel": f"mut:types-{via}", "via": via, "half": 40000},
    )
    assert result["text"] == {"type": "string", "value": "abcdéf✓"}
    assert result["bin"] == {"type": "buffer", "base64": "AAECA/8E"}
    for mixed in ("binOntoText", "textOntoBin"):
        assert result[mixed]["code"] == 40013 and result[mixed]["statusCode"] == 400
    assert result["unchanged"] == {"text": result["text"], "bin": result["bin"]}
    assert result["sizeOk"] is True
    # Each append alone is under maxMessageSize; the aggregate would not be.
    assert result["tooLarge"]["code"] == 40009
    assert result["bigAfterLength"] == 40100 and result["bigAfterTail"] == "bbb"


async def test_mutations_fail_93002_where_rules_disable_them(
    run_node: RunNode, relay: Relay, fmt: str
) -> None:
    relay.apps.set_rules("app1", ChannelRules(), {"locked": ChannelRules(mutable_messages=False)})
    result = await run_node(
        "mutations_rules.mjs", format=fmt, args={"locked": "locked:chat", "open": "open:chat"}
    )
    locked, opened = result["locked"], result["open"]
    for via in VIAS:
        for op in ("append", "update", "delete"):
            error = locked[via][op]
            assert error["code"] == 93002 and error["statusCode"] == 400, (via, op, error)
            assert "resolved" in opened[via][op], (via, op, opened[via][op])
    assert locked["after"] == {"data": "orig", "action": "message.create"}
    assert opened["after"]["action"] == "message.delete"


async def test_update_own_capability(run_node: RunNode, relay: Relay) -> None:
    limited = "app1.limited:limitedsecret"
    capability = Capability.parse(
        {"mut:*": ["publish", "subscribe", "history", "message-update-own"]}
    )
    relay.apps.add([ApiKey.parse(limited, capability)])
    result = await run_node(
        "mutations_ownership.mjs", args={"channel": "mut:own", "limitedKey": limited}
    )
    for via in VIAS:
        out = result["out"][via]
        assert "resolved" in out["appendOwn"], (via, out["appendOwn"])
        assert "resolved" in out["updateOwn"], (via, out["updateOwn"])
        for denied in ("appendOthers", "updateOthers", "deleteOwn"):
            assert out[denied]["code"] == 40160, (via, denied, out[denied])
            assert out[denied]["statusCode"] == 401
    # A client without a clientId cannot own anything.
    assert result["anonymous"]["code"] == 40166
    assert result["mine"] == "me:rest"
    assert result["theirs"] == "owner:ok"


async def test_ephemeral_delivered_live_never_stored(
    run_node: RunNode, relay: Relay, fmt: str
) -> None:
    channel = f"mut:ephemeral-{fmt}"
    result = await run_node("mutations_ephemeral.mjs", format=fmt, args={"channel": channel})
    first, ephemeral, last = result["acks"]
    assert ephemeral == [None] and first[0] < last[0]
    assert [m["data"]["value"] for m in result["live"]] == ["one", "ephemeral", "two"]
    assert result["live"][1]["extras"] == {"ephemeral": True}
    assert result["live"][1]["serial"] is None
    assert [m["data"]["value"] for m in result["history"]] == ["two", "one"]
    items, _ = await rest_history(relay.port, relay.default_key, channel)
    assert [m["data"] for m in items] == ["two", "one"]


async def test_attach_mid_stream_and_rewind_get_the_aggregate(run_node: RunNode, fmt: str) -> None:
    fragments = ["He", "llo", " wo", "rld", "!", "?"]
    result = await run_node(
        "mutations_midstream.mjs",
        format=fmt,
        args={"channel": f"mut:mid-{fmt}", "fragments": fragments, "cut": 3},
    )
    serial, full = result["serial"], result["full"]
    early, late, rewound = result["early"], result["late"], result["rewound"]
    assert [m["action"] for m in early] == ["message.create"] + ["message.append"] * 5
    assert [m["data"] for m in early] == fragments
    versions = [m["version"] for m in early]
    assert versions == sorted(versions) and len(set(versions)) == 6
    # The late subscriber attached after "He" + "llo" + " wo": its first sight is the first
    # append after that, as a message.update with the whole aggregate; then only fragments.
    assert late[0] == {
        "action": "message.update",
        "serial": serial,
        "version": versions[3],
        "data": "Hello world",
        "name": "stream",
    }
    assert [(m["action"], m["data"], m["version"]) for m in late[1:]] == [
        ("message.append", "!", versions[4]),
        ("message.append", "?", versions[5]),
    ]
    # Rewind replays the message once, as its latest aggregate: no fragments after it.
    assert rewound == [
        {
            "action": "message.update",
            "serial": serial,
            "version": versions[-1],
            "data": full,
            "name": "stream",
        }
    ]
    assert result["history"] == [
        {"action": "message.update", "serial": serial, "data": full, "version": versions[-1]}
    ]


async def _resume_run(run_node: RunNode, relay: Relay, tmp_path: Path) -> dict[str, Any]:
    """Run mutations_resume.mjs, dropping the subscriber's socket when the script says so."""
    flag = tmp_path / "drop-now"
    script = asyncio.create_task(
        run_node("mutations_resume.mjs", args={"channel": "mut:resume", "flagFile": str(flag)})
    )
    for _ in range(2000):
        if script.done() or (flag.exists() and flag.read_text()):
            break
        await asyncio.sleep(0.01)
    if not (flag.exists() and flag.read_text()):
        await script
        pytest.fail("the script never reached the drop point")
    connection = relay.realtime.connections[flag.read_text()]
    assert connection.writer is not None
    connection.writer.abort()
    result = await script
    assert result["idAfter"] == result["idBefore"], "resumed, not a new connection"
    assert {"current": "attached", "resumed": True} in result["channelEvents"]
    return result


async def test_resume_replay_rebuilds_appended_messages_exactly(
    run_node: RunNode, relay: Relay, tmp_path: Path
) -> None:
    result = await _resume_run(run_node, relay, tmp_path)
    a, b = result["a"], result["b"]
    assert result["rebuilt"] == {a: "A0-A1-A2-A3-A4", b: "B0-B1-B2-B3"}
    seen = result["seen"]
    # No version delivered twice, and per message each delivery is newer than the last.
    keys = [(m["serial"], m["version"]) for m in seen]
    assert len(keys) == len(set(keys))
    for serial in (a, b):
        versions = [m["version"] for m in seen if m["serial"] == serial]
        assert versions == sorted(versions)
    assert [m["action"] for m in seen if m["serial"] == a][:2] == [
        "message.create",
        "message.append",
    ]
    # B's first sight is its create (delivered live) or, if created while away, the aggregate.
    first_b = next(m for m in seen if m["serial"] == b)
    assert first_b["action"] in ("message.create", "message.update")


async def test_resume_keeps_fragments_for_messages_seen_before_the_drop(
    run_node: RunNode, relay: Relay, tmp_path: Path
) -> None:
    result = await _resume_run(run_node, relay, tmp_path)
    a = result["a"]
    actions = [m["action"] for m in result["seen"] if m["serial"] == a]
    assert actions == ["message.create"] + ["message.append"] * 4


async def test_burst_of_concurrent_streams_arrives_complete(run_node: RunNode) -> None:
    """100 messages streamed at once, 20 appends each: every fragment arrives, in order."""
    result = await run_node(
        "mutations_burst.mjs",
        args={"channel": "mut:burst", "streams": 100, "appends": 20, "writers": 4},
        deadline=60,
    )
    assert result["appendsSeen"] == 2000
    assert result["wrong"] == 0
    assert result["nonIncreasing"] == 0
    assert result["others"] == 0
    assert result["stored"] == [{"ok": True}] * 3
    print(f"burst: {result['appendsPerSecond']} appends/s end to end ({result['elapsedMs']} ms)")
