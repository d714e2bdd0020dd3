"""Channel lifecycle and ordering as ably-js users rely on them."""

from __future__ import annotations

from interop_support import ConnectRaw, RunNode


async def test_all_subscribers_see_concurrent_publishes_in_one_serial_order(
    run_node: RunNode,
) -> None:
    each = 20
    out = await run_node("ordering.mjs", args={"channel": "ordering", "each": each})
    msgpack_view, json_view = out["received"]
    assert len(msgpack_view) == 3 * each
    assert msgpack_view == json_view, "subscribers in both formats see one order"
    assert out["history"] == msgpack_view, "history has the delivery order"
    serials = [m["serial"] for m in msgpack_view]
    assert serials == sorted(set(serials))
    # Each publisher's own messages keep their publish order, and their ACKed serials.
    by_serial = {m["serial"]: m["name"] for m in msgpack_view}
    for n, acked in enumerate(out["acks"]):
        assert [by_serial[s] for s in acked] == [f"p{n}-{i}" for i in range(each)]


async def test_detach_resolves_and_reattach_resumes_delivery(run_node: RunNode, fmt: str) -> None:
    out = await run_node("detach.mjs", format=fmt, args={"channel": "detach"})
    assert out["stateAfterDetach"] == "detached"
    assert out["stateAfterReattach"] == "attached"
    assert out["received"] == "after-reattach"


async def test_detached_connection_gets_no_more_messages_for_that_channel(
    raw: ConnectRaw,
) -> None:
    """ably-js drops a MESSAGE for a channel it is not attached to (realtimechannel.ts RTL17),
    so only a raw client can see whether the relay keeps sending after DETACHED."""
    subscriber = await raw("json")
    publisher = await raw("msgpack")
    assert (await subscriber.attach("left"))["action"] == 11
    assert (await subscriber.attach("barrier"))["action"] == 11

    await subscriber.send({"action": 12, "channel": "left"})
    detached = await subscriber.recv_action(13)
    assert detached["channel"] == "left"

    await publisher.publish("left", [{"name": "after-detach"}])
    assert (await publisher.recv_action(1, 2))["action"] == 1
    await publisher.publish("barrier", [{"name": "marker"}])
    assert (await publisher.recv_action(1, 2))["action"] == 1
    delivered = await subscriber.recv_action(15)
    assert (delivered["channel"], delivered["messages"][0]["name"]) == ("barrier", "marker")


async def test_history_start_and_end_select_by_timestamp_inclusively(
    run_node: RunNode, fmt: str
) -> None:
    out = await run_node("time_window.mjs", format=fmt, args={"channel": "time-window"})
    timestamps = out["timestamps"]
    assert timestamps == sorted(set(timestamps)), "publishes 5 ms apart have distinct timestamps"
    assert out["exactlyB"] == ["b"]
    assert out["fromB"] == ["c", "b"]
    assert out["untilB"] == ["b", "a"]
    assert out["fromBForwards"] == ["b", "c"]
