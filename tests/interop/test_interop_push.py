"""The push admin API and the Push plugin through ably-js 2.28 (issue 16): devices are stored,
subscriptions followed, and every notification recorded per device; devices on Ably's
ablyChannel transport receive theirs as `__ably_push__` messages."""

from __future__ import annotations

from interop_support import RunNode

ENGINES = ["sqlite", "postgresql"]


async def test_push_registrations_subscriptions_and_notifications(
    run_node: RunNode, fmt: str
) -> None:
    out = await run_node("push_admin.mjs", format=fmt, args={"channel": f"push-{fmt}"})
    channel = f"push-{fmt}"

    assert out["saved"]["push"]["state"] == "ACTIVE"
    assert out["got"]["clientId"] == "alice"
    assert out["got"]["push"]["recipient"] == {
        "transportType": "gcm",
        "registrationToken": "token-dev-1",
    }
    assert out["all"] == ["dev-1", "dev-2", "dev-3"]
    assert out["alices"] == ["dev-1", "dev-2"]
    assert out["firstPage"] == ["dev-1", "dev-2"]
    assert out["removedGet"]["statusCode"] == 404
    assert out["badPlatform"]["code"] == 40000

    assert sorted(out["subsA"], key=str) == sorted(
        [
            {"channel": f"{channel}:a", "clientId": "alice"},
            {"channel": f"{channel}:a", "deviceId": "dev-2"},
        ],
        key=str,
    )
    assert out["channels"] == [f"{channel}:a", f"{channel}:b"]
    assert out["channelsAfter"] == [f"{channel}:a"]
    # Removing a client's devices removes their subscriptions, not the clientId's own.
    assert out["afterRemoveWhere"] == []
    assert out["subsAfterRemoveWhere"] == [{"channel": f"{channel}:a", "clientId": "alice"}]

    assert out["activatedToken"] == "string"
    assert {s.get("deviceId") or s.get("clientId") for s in out["ownSubscriptions"]} == {
        out["deviceId"],
        "dora",
    }
    assert out["direct"] == {
        "notification": {"title": "Hello", "body": "From admin"},
        "data": {"n": "1"},
    }
    assert out["byClientId"] == {"notification": {"title": "By clientId"}}
    assert out["fromChannel"] == {
        "notification": {"title": "News", "body": "Channel push"},
        "data": {"id": "7"},
    }
    assert out["ownAfterUnsubscribe"] == []

    titles = [n["payload"]["notification"]["title"] for n in out["recorded"]]
    assert titles == ["Hello", "By clientId", "News"]
    assert out["recorded"][2]["channel"] == f"{channel}:news"
    assert all(n["deviceId"] == out["deviceId"] for n in out["recorded"])
