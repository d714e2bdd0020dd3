"""Channel qualifiers through ably-js 2.28 (issue 16): subscription filters (`[filter=...]`,
ably-js getDerived) with Ably's JMESPath expressions over name and extras.headers, params in the
name (`[?rewind=2]x`), and `[meta]` metachannels, which a key needs a capability for."""

from __future__ import annotations

from interop_support import RunNode


async def test_filtered_rewound_and_meta_qualified_channels(run_node: RunNode, fmt: str) -> None:
    out = await run_node("qualifiers.mjs", format=fmt, args={"channel": f"qual-{fmt}"})
    assert out["derivedName"].startswith("[filter=")
    assert [m["data"] for m in out["filtered"]] == ["a", "d"]
    assert out["plain"] == ["a", "b", "c", "d"]
    # [?rewind=2]: the two latest messages before the attach, then live.
    assert out["rewound"] == ["two", "three", "a", "b", "c", "d"]
    assert out["meta"]["code"] == 40160
    assert out["bad"]["code"] == 40010
