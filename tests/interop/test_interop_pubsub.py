"""Publish and subscribe through the unmodified ably-js 2.28, over msgpack and JSON."""

from __future__ import annotations

import itertools
import time

import pytest
from interop_support import RunNode

# ably-js through both engines (tests/conftest.py).
ENGINES = ["sqlite", "postgresql"]


async def test_published_message_reaches_subscriber_and_history_unchanged(
    run_node: RunNode, fmt: str
) -> None:
    out = await run_node("roundtrip.mjs", format=fmt, args={"channel": "rooms:lobby"})
    conn_id = out["publisherConnectionId"]
    [serial] = out["publishResult"]["serials"]
    received = out["received"]

    assert isinstance(serial, str)
    assert serial
    assert received["name"] == "greeting"
    assert received["data"] == {"type": "string", "value": "hello relay"}
    assert received["clientId"] == "alice"
    assert received["connectionId"] == conn_id
    assert received["id"] == f"{conn_id}:0:0"
    assert received["serial"] == serial
    assert received["action"] == "message.create"
    assert received["extras"] == {"headers": {"x-trace": "abc", "count": 2}}
    assert abs(received["timestamp"] - time.time() * 1000) < 60_000, "timestamps are ms"
    # publish() resolved on the ACK, and the ACK follows the commit: history already has it.
    assert out["history"] == [received]
    assert isinstance(out["pingMs"], int | float)
    assert out["closedState"] == "closed"


async def test_echo_false_publisher_does_not_receive_its_own_messages(
    run_node: RunNode, fmt: str
) -> None:
    out = await run_node("echo.mjs", format=fmt, args={"channel": "echo-test"})
    assert out["quietReceived"] == ["marker"]
    assert out["otherReceived"] == ["from-quiet", "marker"]


PAYLOAD_NAMES = [
    "buffer",
    "empty-buffer",
    "utf8-bytes",
    "string",
    "unicode",
    "base64-looking-string",
    "object",
    "array",
    "no-data",
]


@pytest.mark.parametrize(
    ("pub", "sub"),
    list(itertools.product(["msgpack", "json"], repeat=2)),
    ids=lambda f: f,
)
async def test_payload_types_survive_across_formats(run_node: RunNode, pub: str, sub: str) -> None:
    """Buffers stay Buffers, strings stay strings and objects stay objects, whatever each
    side's format; the relay transcodes binary between msgpack bin and JSON base64."""
    out = await run_node("payloads.mjs", args={"channel": "payloads", "pub": pub, "sub": sub})
    sent = out["sent"]
    assert [p["name"] for p in sent] == PAYLOAD_NAMES
    expected = [{"name": p["name"], "data": p["data"], "encoding": None} for p in sent]
    assert out["received"] == expected
    assert out["history"]["msgpack"] == expected
    assert out["history"]["json"] == expected


async def test_ack_serial_equals_delivered_and_history_serial_in_channel_order(
    run_node: RunNode, fmt: str
) -> None:
    singles, pipelined = 5, 10
    out = await run_node(
        "serials.mjs",
        format=fmt,
        args={"channel": "serials", "singles": singles, "pipelined": pipelined},
    )
    acks = out["acks"]
    assert [len(a["serials"]) for a in acks] == [1] * singles + [3]
    assert [len(a["serials"]) for a in out["pipelined"]] == [1] * pipelined
    acked = [s for a in acks + out["pipelined"] for s in a["serials"]]
    names = (
        [f"single-{i}" for i in range(singles)]
        + ["multi-0", "multi-1", "multi-2"]
        + [f"pipelined-{i}" for i in range(pipelined)]
    )
    expected = [{"name": n, "serial": s} for n, s in zip(names, acked, strict=True)]

    assert all(isinstance(s, str) and s for s in acked)
    assert acked == sorted(set(acked)), "serials must increase strictly as strings"
    assert out["received"] == expected
    assert out["history"] == expected


async def test_publish_without_attaching_is_acked_and_delivered(
    run_node: RunNode, fmt: str
) -> None:
    """ably-js 2.x RealtimeChannel.publish() sends without attaching the channel first."""
    out = await run_node("publish_unattached.mjs", format=fmt, args={"channel": "no-attach"})
    assert out["publisherChannelState"] == "initialized"
    assert out["received"] == "no-attach"
    assert out["result"]["serials"] == [out["serial"]]


async def test_rest_publish_with_connection_key_speaks_for_that_connection(
    run_node: RunNode, fmt: str
) -> None:
    out = await run_node("rest_on_behalf.mjs", format=fmt, args={"channel": f"behalf-{fmt}"})
    assert out["received"]["connectionId"] == out["connectionId"]
    assert [m["connectionId"] for m in out["history"]] == [out["connectionId"]]
    assert out["refused"]["code"] == 40006
