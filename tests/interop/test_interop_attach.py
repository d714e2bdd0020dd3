"""What an attach asks for and gets, as ably-js's own realtime suite checks it: channel modes
and params, rewind (as a number, with hasBacklog, right behind a publish), a reattach that must
not rewind, and a client's presence SYNC request."""

from __future__ import annotations

from interop_support import ConnectRaw, RunNode

from channel_relay.protocol.actions import Action, Flag

_DEFAULT = ["presence", "publish", "subscribe", "presence_subscribe", "annotation_publish"]


async def test_requested_modes_are_granted_reported_and_enforced(
    run_node: RunNode, fmt: str
) -> None:
    out = await run_node("attach_modes.mjs", format=fmt, args={"channel": "modes"})

    params_modes = out["paramsModes"]
    assert params_modes["modes"] == ["subscribe"]
    assert params_modes["params"] == {"modes": "subscribe"}
    assert params_modes["publish"]["code"] == 40165
    assert params_modes["enter"]["code"] == 40165

    # params.modes wins over the mode flags of the same attach.
    both = out["paramsWin"]
    assert both["modes"] == ["presence", "subscribe"]
    assert "resolved" in both["enter"]
    assert both["publish"]["code"] == 40165

    flags = out["flagModes"]
    assert flags["modes"] == ["publish", "presence_subscribe"]
    assert "resolved" in flags["publish"]
    assert flags["enter"]["code"] == 40165

    # Ably's default set; a param Ably does not know is not echoed.
    defaults = out["defaults"]
    assert defaults["modes"] == _DEFAULT
    assert defaults["params"] == {}
    assert "resolved" in defaults["publish"]
    assert "resolved" in defaults["enter"]

    assert out["receivedWithoutSubscribe"] == []
    assert out["presenceWithoutSubscribe"] == []


async def test_rewind_sent_as_a_number_replays_that_many_then_live(
    run_node: RunNode, fmt: str
) -> None:
    out = await run_node(
        "attach_rewind.mjs", format=fmt, args={"check": "numeric", "channel": "rewind-number"}
    )
    assert out == {"names": ["three", "live"], "params": {"rewind": 1}}


async def test_has_backlog_is_set_only_when_a_replay_follows(run_node: RunNode, fmt: str) -> None:
    out = await run_node(
        "attach_rewind.mjs", format=fmt, args={"check": "backlog", "channel": "rewind-backlog"}
    )
    assert out["full"] is True
    assert not out["empty"]


async def test_rewind_right_behind_a_publish_and_after_reattaching_loses_nothing(
    run_node: RunNode, fmt: str
) -> None:
    out = await run_node(
        "attach_rewind.mjs", format=fmt, args={"check": "reattach", "channel": "rewind-reattach"}
    )
    assert out == {"first": ["message"], "again": ["message"]}


async def test_has_backlog_is_set_when_a_resume_replays_what_was_missed(raw: ConnectRaw) -> None:
    client = await raw("json")
    attached = await client.attach("resume-backlog")
    assert not attached["flags"] & Flag.HAS_BACKLOG
    publisher = await raw("json")
    await publisher.publish("resume-backlog", [{"name": "missed"}])
    assert (await publisher.recv_action(Action.ACK, Action.NACK))["action"] == Action.ACK
    await client.send(
        {
            "action": Action.ATTACH,
            "channel": "resume-backlog",
            "channelSerial": attached["channelSerial"],
        }
    )
    resumed = await client.recv_action(Action.ATTACHED)
    assert resumed["flags"] & Flag.RESUMED
    assert resumed["flags"] & Flag.HAS_BACKLOG
    replayed = await client.recv_action(Action.MESSAGE)
    assert [m["name"] for m in replayed["messages"]] == ["missed"]


async def test_a_reattach_does_not_rewind(raw: ConnectRaw) -> None:
    """ably-js marks a reattach with ATTACH_RESUME (realtime/resume resume_rewind_1): the
    rewind it still carries must replay nothing."""
    client = await raw("json")
    for name in ("a", "b"):
        await client.publish("reattach-rewind", [{"name": name}])
        assert (await client.recv_action(Action.ACK, Action.NACK))["action"] == Action.ACK
    await client.send(
        {
            "action": Action.ATTACH,
            "channel": "reattach-rewind",
            "flags": int(Flag.ATTACH_RESUME),
            "params": {"rewind": "1"},
        }
    )
    attached = await client.recv_action(Action.ATTACHED)
    assert not attached["flags"] & Flag.HAS_BACKLOG
    await client.publish("reattach-rewind", [{"name": "live"}])
    delivered = await client.recv_action(Action.MESSAGE)
    assert [m["name"] for m in delivered["messages"]] == ["live"]


async def test_a_sync_request_reports_members_the_client_should_not_have_as_left(
    run_node: RunNode, fmt: str
) -> None:
    out = await run_node("presence_sync_request.mjs", format=fmt, args={"channel": "sync-req"})
    assert out["before"] == ["continuous", "gone"]
    assert out["leftEvent"] == "gone"
    assert out["after"] == ["continuous"]
    assert out["channelState"] == "attached"
