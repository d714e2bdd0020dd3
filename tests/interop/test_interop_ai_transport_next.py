"""What AI Transport 1.0 needs of the service beyond 0.8.0 (issue 16), through ably-js 2.28."""

from __future__ import annotations

from interop_support import ConnectRaw, RunNode


async def test_republish_rewind_to_serial_rest_ephemeral_and_publish_without_attach(
    run_node: RunNode, fmt: str
) -> None:
    out = await run_node("ai_transport_next.mjs", format=fmt, args={"channel": f"ai:next-{fmt}"})

    # A republish with the same ids is ACKed with the original serials and stored once.
    assert out["again"] == out["first"] and all(out["first"])
    # RealtimeChannel.publish does not attach; the relay accepts it all the same.
    assert out["agentStateAfterPublish"] == "initialized"
    # The REST ephemeral param: delivered live with no serial, never stored.
    assert out["ephemeral"]["serials"] == [None]

    watched = [(m["name"], m["data"]["value"]) for m in out["watcher"]]
    assert watched == [
        ("ai-input", "part one"),
        ("ai-input", "part two"),
        ("ai-output", "second"),
        ("ai-output", "third"),
        ("ai-status", "thinking"),
        ("ai-output", "live"),
    ]
    assert out["watcher"][4]["serial"] is None
    # Rewinding to a serial: every stored message after it, then live.
    assert [m["data"]["value"] for m in out["reloaded"]] == ["third", "live"]
    assert [m["data"]["value"] for m in out["history"]] == [
        "part one",
        "part two",
        "second",
        "third",
        "live",
    ]


async def test_rewind_to_a_serial_of_another_log_fails_the_channel_with_80006(
    raw: ConnectRaw,
) -> None:
    client = await raw()
    await client.send(
        {
            "action": 10,
            "channel": "ai:foreign",
            "params": {"rewind": "000000000abc-0000000000000007"},
        }
    )
    reply = await client.recv_action(9, 11)
    assert reply["action"] == 9 and reply["channel"] == "ai:foreign"
    assert reply["error"]["code"] == 80006
