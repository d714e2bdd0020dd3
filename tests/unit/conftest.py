"""A throwaway store for the unit tests that need one (nonces are claimed in the store)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from channel_relay.store.sqlite import SqliteStore


@pytest.fixture
async def store() -> AsyncIterator[SqliteStore]:
    store = SqliteStore(None)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
