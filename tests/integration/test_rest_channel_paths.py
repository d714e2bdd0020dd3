"""Channel names in REST paths decode the way each official SDK encodes them.

ably-js encodes with encodeURIComponent (a "+" in a name is %2B, a space %20); ably-python with
quote_plus (a space is "+"). Both must reach the same channel a realtime client names.
"""

from __future__ import annotations

import base64

import aiohttp
import pytest
from yarl import URL

from channel_relay.server import Relay

APP_KEY = "app1.key1:secret1"
AUTH = {"Authorization": "Basic " + base64.b64encode(APP_KEY.encode()).decode()}


@pytest.mark.parametrize(
    ("raw", "channel"),
    [
        ("room%20one", "room one"),  # ably-js: encodeURIComponent
        ("room+one", "room one"),  # ably-python: quote_plus
        ("a%2Bb", "a+b"),  # a literal plus, encoded by either SDK
        ("a%2541", "a%41"),  # decoded once, never twice
        ("x%2Fy%3Az", "x/y:z"),
    ],
)
async def test_a_channel_named_in_a_rest_path_is_the_channel_realtime_clients_name(
    relay: Relay, raw: str, channel: str
) -> None:
    base = f"http://127.0.0.1:{relay.port}/channels/{raw}/messages"
    async with aiohttp.ClientSession(headers=AUTH) as http:
        async with http.post(URL(base, encoded=True), json={"name": "n", "data": "d"}) as resp:
            assert resp.status == 201, await resp.text()
            assert (await resp.json())["channel"] == channel
        async with http.get(URL(base, encoded=True)) as resp:
            assert [m["data"] for m in await resp.json()] == ["d"]
    stored = relay.channels.peek(relay.apps.lookup("app1.key1").app_id, channel)
    assert stored is not None and stored.delivered_seq == 1
