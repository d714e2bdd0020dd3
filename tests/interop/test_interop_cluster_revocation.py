"""A token revoked through one node stops working on every node at once, as on a single node:
an unmodified ably-js client using it on node B is disconnected with 40141 (and renews its
token) as soon as the revocation is taken through node A, and node B's REST refuses the token.
No node polls for revocations: node A's commit notifies node B, which reads it at once."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from continuity_support import NodeProcess
from relay_support import running_relay

from channel_relay.server import Relay

# Well under the second the nodes used to poll at (and without the notification, node B would
# never hear of the revocation while it runs).
IMMEDIATE_SECONDS = 0.6


@pytest.fixture
async def cluster(tmp_path: Path, postgres_url: str) -> AsyncIterator[list[Relay]]:
    for name in "ab":
        (tmp_path / name).mkdir()
    async with (
        running_relay(tmp_path / "a", store=postgres_url) as a,
        running_relay(tmp_path / "b", store=postgres_url) as b,
    ):
        yield [a, b]


async def test_a_token_revoked_through_one_node_is_refused_at_once_on_another(
    cluster: list[Relay], nodes: list[NodeProcess], http: aiohttp.ClientSession
) -> None:
    a, b = cluster
    script = await NodeProcess.start(
        "cluster_revoke.mjs",
        port=b.port,
        args={"channel": "revocable", "revokePort": a.port},
        deadline=40,
    )
    nodes.append(script)
    out = await script.finish(within=45)
    assert out["successCount"] == 1
    # The error a single node gives: the token error that makes ably-js renew.
    assert out["disconnected"]["reason"]["code"] == 40141, out
    assert out["disconnected"]["reason"]["statusCode"] == 401, out
    assert out["droppedMs"] < IMMEDIATE_SECONDS * 1000, out
    assert out["renewed"], out
    # Node B's REST refuses the revoked token too.
    bearer = "Bearer " + base64.b64encode(out["revokedToken"].encode()).decode()
    async with http.get(
        f"{b.url}/channels/revocable/messages", headers={"Authorization": bearer}
    ) as resp:
        body = await resp.json()
    assert (resp.status, body["error"]["code"]) == (401, 40141)
