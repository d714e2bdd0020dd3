"""History and REST publishing through the unmodified ably-js 2.28."""

from __future__ import annotations

from typing import Any

from interop_support import RunNode

# ably-js through both engines (tests/conftest.py).
ENGINES = ["sqlite", "postgresql"]


def _names(pages: list[dict[str, Any]]) -> list[list[str]]:
    return [page["items"] for page in pages]


def _flags(pages: list[dict[str, Any]]) -> list[tuple[bool, bool]]:
    return [(page["hasNext"], page["isLast"]) for page in pages]


async def test_history_pages_through_every_message_in_both_directions(
    run_node: RunNode, fmt: str
) -> None:
    out = await run_node(
        "history_paging.mjs", format=fmt, args={"channel": "paging", "count": 7, "limit": 2}
    )
    forwards = [["m0", "m1"], ["m2", "m3"], ["m4", "m5"], ["m6"]]
    backwards = [["m6", "m5"], ["m4", "m3"], ["m2", "m1"], ["m0"]]
    flags = [(True, False), (True, False), (True, False), (False, True)]
    for api in ("rest", "realtime"):
        assert _names(out[f"{api}-forwards"]) == forwards, api
        assert _flags(out[f"{api}-forwards"]) == flags, api
        assert _names(out[f"{api}-backwards"]) == backwards, api
        assert _flags(out[f"{api}-backwards"]) == flags, api
    assert _names(out["rest-default"]) == backwards, "history is newest first by default"
    assert out["firstAgain"] == ["m0", "m1"]


async def test_history_of_exactly_full_pages_ends_on_a_page_without_next(
    run_node: RunNode,
) -> None:
    out = await run_node(
        "history_paging.mjs", args={"channel": "paging-even", "count": 6, "limit": 2}
    )
    pages = out["rest-forwards"]
    # The last full page may say hasNext (an empty page follows) but no message may repeat.
    names = [name for page in _names(pages) for name in page]
    assert names == [f"m{i}" for i in range(6)]
    assert not pages[-1]["hasNext"] or pages[-1]["items"] == []


async def test_history_until_attach_stops_at_the_attach_point(run_node: RunNode, fmt: str) -> None:
    out = await run_node("until_attach.mjs", format=fmt, args={"channel": "until-attach"})
    assert out["attachSerial"], (
        "ATTACHED must carry the channelSerial ably-js keeps as attachSerial"
    )
    assert out["untilAttach"] == ["before-3", "before-2", "before-1"]
    assert out["all"] == ["after-1", "before-3", "before-2", "before-1"]


async def test_rest_publish_reaches_realtime_subscribers_and_history(
    run_node: RunNode, fmt: str
) -> None:
    out = await run_node("rest_publish.mjs", format=fmt, args={"channel": "rest-then-realtime"})
    names = ["single", "batch-a", "batch-b", "batch-c"]
    datas = [
        {"type": "string", "value": "one"},
        {"type": "string", "value": "a"},
        {"type": "object", "value": {"b": True}},
        {"type": "buffer", "base64": "Yw=="},
    ]
    for where in ("received", "history"):
        assert [m["name"] for m in out[where]] == names, where
        assert [m["data"] for m in out[where]] == datas, where
    assert out["received"] == out["history"]

    serials = out["singleResult"]["serials"] + out["batchResult"]["serials"]
    assert len(serials) == 4
    assert [m["serial"] for m in out["history"]] == serials
    # ably-js mints one id base per REST publish: "<base>:<index>".
    ids = [m["id"] for m in out["history"]]
    assert ids[0].endswith(":0")
    assert [i.rsplit(":", 1)[1] for i in ids[1:]] == ["0", "1", "2"]
    assert len({i.rsplit(":", 1)[0] for i in ids[1:]}) == 1


async def test_rest_publish_with_the_same_message_id_is_stored_once(
    run_node: RunNode, fmt: str
) -> None:
    out = await run_node("idempotent.mjs", format=fmt, args={"channel": "idempotent"})
    expected = [
        ("fixed-id-single:0", "once"),
        ("fixed-id-batch:0", "batch-0"),
        ("fixed-id-batch:1", "batch-1"),
    ]
    history = [(m["id"], m["name"]) for m in out["history"]]
    assert history[:3] == expected
    assert [name for _, name in history] == ["once", "batch-0", "batch-1", "marker"]
    assert [(m["id"], m["name"]) for m in out["received"]] == history
    # The first publish names the stored serials; a repeat succeeds (the client may be
    # retrying after a lost response) and names either the same serials or none (null).
    results = out["results"]
    assert [m["serial"] for m in out["history"][:3]] == (
        results[0]["serials"] + results[2]["serials"]
    )
    for first, repeat in ((results[0], results[1]), (results[2], results[3])):
        assert repeat["serials"] in (first["serials"], [None] * len(first["serials"]))
