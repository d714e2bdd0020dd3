"""Fixtures for the client tests: Realtime clients of channel-relay's `client` package, connected
to the in-process `relay` (tests/conftest.py) and closed after the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from client_support import MakeClient

from channel_relay.client import Realtime
from channel_relay.server import Relay


@pytest.fixture
async def make_client(relay: Relay) -> AsyncIterator[MakeClient]:
    """make_client(client_id=None, connect=True, **options) -> a Realtime client on `relay`
    (the relay's key unless credentials are given)."""
    made: list[Realtime] = []

    async def make(
        client_id: str | None = None, *, connect: bool = True, **options: Any
    ) -> Realtime:
        if not any(k in options for k in ("key", "token", "token_details", "auth_callback")):
            options["key"] = relay.default_key
        key = options.pop("key", None)
        client = Realtime(key, client_id=client_id, url=f"http://127.0.0.1:{relay.port}", **options)
        made.append(client)
        if connect:
            await client.connect()
        return client

    yield make
    for client in made:
        await client.close()
