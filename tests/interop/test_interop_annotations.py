"""Message annotations through ably-js 2.28 (issue 16): ProtocolMessage action 21 and the REST
routes, delivered to connections with the annotation_subscribe mode, and rolled up into the
message.summary that every subscriber receives, with each of Ably's aggregations."""

from __future__ import annotations

from interop_support import RunNode

ENGINES = ["sqlite", "postgresql"]


async def test_annotations_deliver_and_summarize_every_aggregation(
    run_node: RunNode, fmt: str
) -> None:
    out = await run_node("annotations.mjs", format=fmt, args={"channel": f"ann-{fmt}"})
    serial = out["serial"]
    assert out["summaryActions"] == ["message.summary"]
    assert out["summarySerials"] == [serial]
    # As on Ably, a summary carries the annotated message's name: subscribe('post') sees it.
    assert out["summaryNames"] == ["post"]
    assert out["summariesByName"] is True
    assert out["summary"] == {
        "reactions:distinct.v1": {
            "👍": {"total": 2, "clientIds": ["ann", "bob"], "clipped": False},
        },
        "votes:unique.v1": {
            "no": {"total": 2, "clientIds": ["ann", "dan"], "clipped": False},
        },
        "likes:multiple.v1": {
            "clap": {
                "total": 4,
                "clientIds": {"ann": 3, "bob": 1},
                "totalUnidentified": 0,
                "clipped": False,
                "totalClientIds": 2,
            }
        },
        "read:flag.v1": {"total": 1, "clientIds": ["ann"], "clipped": False},
        "views:total.v1": {"total": 2},
    }

    # History and getMessage carry the message's current summary too.
    assert out["historySummary"] == out["summary"]
    assert out["fetchedSummary"] == out["summary"]

    saw = out["bobSaw"]
    assert len(saw) == 14
    assert saw[0] == {
        "action": "annotation.create",
        "type": "reactions:distinct.v1",
        "name": "👍",
        "clientId": "ann",
        "messageSerial": serial,
        "serial": saw[0]["serial"],
    }
    assert saw[-1]["action"] == "annotation.delete"
    serials = [a["serial"] for a in saw]
    assert all(s > serial for s in serials) and serials == sorted(serials)
    # Without the annotation_subscribe mode, only summaries arrive.
    assert out["plainSawAnnotations"] == 0

    assert out["pages"] == [10, 4, True, False]
    assert out["listedSerials"] == serials

    errors = out["errors"]
    assert errors["noSuchMessage"]["code"] == 40400
    assert errors["badType"]["code"] == 40003
    assert errors["anonymous"]["code"] == 40003
