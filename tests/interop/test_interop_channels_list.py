"""Channel enumeration (GET /channels) through ably-js's rest.request, as the Ably CLI calls it."""

from __future__ import annotations

from interop_support import RunNode


async def test_channel_enumeration_lists_details_names_and_pages(
    run_node: RunNode, fmt: str
) -> None:
    names = ["enum:a", "enum:b", "enum:c", "enum:d", "enum:e"]
    out = await run_node(
        "channels_list.mjs",
        format=fmt,
        args={"prefix": "enum:", "names": names, "other": "other:x", "busy": "enum:b"},
    )

    details = {d["channelId"]: d for d in out["details"]}
    assert sorted(details) == names
    busy = details["enum:b"]["status"]
    assert busy["isActive"] is True
    assert busy["occupancy"]["metrics"]["presenceMembers"] == 1
    assert busy["occupancy"]["metrics"]["connections"] == 1
    assert details["enum:a"]["status"]["occupancy"]["metrics"]["connections"] == 0
    assert out["defaultIds"] == names

    pages = out["idPages"]
    assert [p["items"] for p in pages] == [names[0:2], names[2:4], names[4:]]
    assert [p["hasNext"] for p in pages] == [True, True, False]


async def test_channel_enumeration_refuses_bad_params_and_narrow_capabilities(
    run_node: RunNode,
) -> None:
    out = await run_node(
        "channels_list.mjs",
        args={"prefix": "deny:", "names": ["deny:a"], "other": "x", "busy": "deny:a"},
    )
    assert out["badBy"] == {"success": False, "statusCode": 400, "errorCode": 40003}
    assert out["forbidden"] == {"success": False, "statusCode": 401, "errorCode": 40160}
