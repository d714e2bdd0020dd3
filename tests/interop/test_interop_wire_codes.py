"""Codes and shapes ably-js's own suites check one by one, answered as Ably answers them."""

from __future__ import annotations

from typing import Any

from interop_support import RunNode

from channel_relay.auth.capability import Capability
from channel_relay.auth.keys import ApiKey
from channel_relay.server import Relay

OPS_KEY = "app1.ops:secret3"


async def _check(run_node: RunNode, fmt: str, check: str, **args: str) -> dict[str, Any]:
    return await run_node(
        "wire_codes.mjs", format=fmt, args={"check": check, "channel": "codes", **args}
    )


async def test_an_unknown_method_on_a_known_path_is_404(run_node: RunNode, fmt: str) -> None:
    out = await _check(run_node, fmt, "notFound")
    assert out == {"statusCode": 404, "errorCode": 40400, "success": False}


async def test_batch_publish_answers_api_version_2_with_a_flat_array(
    run_node: RunNode, fmt: str
) -> None:
    out = await _check(run_node, fmt, "batchV2")
    assert out["statusCode"] == 201
    assert [item["channel"] for item in out["items"]] == ["codes:1", "codes:2"]
    assert all("error" not in item and item["messageId"] for item in out["items"])


async def test_a_malformed_recovery_key_gives_a_new_connection_with_80018(
    run_node: RunNode, fmt: str
) -> None:
    out = await _check(run_node, fmt, "recovery")
    assert out == {"reason": 80018, "errorReason": 80018, "msgSerial": 0, "newKey": True}


async def test_an_unknown_key_name_fails_a_realtime_connection_with_40101(
    run_node: RunNode, fmt: str
) -> None:
    assert await _check(run_node, fmt, "unknownKey") == {"reason": 40101}


async def test_a_token_lists_its_operations_in_the_requested_order(
    relay: Relay, run_node: RunNode, fmt: str
) -> None:
    relay.apps.add(
        [ApiKey.parse(OPS_KEY, Capability.parse({"ops": ["publish", "subscribe", "presence"]}))]
    )
    out = await _check(run_node, fmt, "capability", opsKey=OPS_KEY)
    # ably-js sorted the lists it sent in place; the token answers in that order.
    assert out["granted"] == {"ops": ["presence", "publish", "subscribe"]}
    assert out["requested"] == out["granted"]


async def test_the_force_nack_publish_param_is_refused_with_40099(
    run_node: RunNode, fmt: str
) -> None:
    out = await _check(run_node, fmt, "forceNack")
    assert (out["refused"]["code"], out["refused"]["statusCode"]) == (40099, 400)
    assert out["stored"] == 0
