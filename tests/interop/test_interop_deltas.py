"""vcdiff deltas (`params.delta = 'vcdiff'`) through ably-js 2.28 with @ably/vcdiff-decoder
(issue 16): the relay's own VCDIFF encoder (channel_relay.protocol.vcdiff), read by the
official decoder."""

from __future__ import annotations

import random

from interop_support import RunNode

from channel_relay.protocol import vcdiff


async def test_delta_subscriber_decodes_every_message_after_the_first(
    run_node: RunNode, fmt: str
) -> None:
    out = await run_node("deltas.mjs", format=fmt, args={"channel": f"delta-{fmt}"})
    assert out["deltaData"] == out["plainData"]
    assert [d["type"] for d in out["deltaData"]] == [
        "object",
        "object",
        "string",
        "string",
        "buffer",
        "buffer",
        "object",
    ]
    # Every message after the first arrived as a delta against the one before, and only the
    # subscriber that asked for deltas got any.
    assert out["decodes"] == 6
    assert out["reattaches"] == []
    assert out["deltaExtras"][0] is None
    assert out["deltaExtras"][1:] == [
        {"format": "vcdiff", "from": previous} for previous in out["ids"][:-1]
    ]
    assert out["attachedParams"] == {"delta": "vcdiff"}
    assert out["quietData"] == out["plainData"][:3] + out["plainData"][4:]


async def test_encoder_output_decodes_with_the_official_decoder(run_node: RunNode) -> None:
    rng = random.Random(16)
    pairs = [
        (b"", b"only new bytes"),
        (b"a base that goes away", b""),
        (b"x" * 3000, b"x" * 5000 + b"y"),
        (bytes(range(256)) * 2, bytes(reversed(range(256))) + bytes(range(256))),
    ]
    for _ in range(30):
        source = bytes(rng.randrange(5) for _ in range(rng.randrange(400)))
        target = bytes(rng.randrange(5) for _ in range(rng.randrange(400)))
        pairs.append((source, target))
    cases = [[source.hex(), vcdiff.encode(source, target).hex()] for source, target in pairs]
    out = await run_node("vcdiff_decode.mjs", args={"cases": cases})
    assert out["targets"] == [target.hex() for _, target in pairs]
    # COPY instructions make a small change to a payload much smaller than the payload.
    base = b'{"foo":"bar","count":1,"status":"active","note":"the same long text"}'
    assert len(vcdiff.encode(base, base.replace(b"1", b"2"))) < len(base) // 2
