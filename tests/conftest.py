"""Fixtures shared by the integration and interop tests: a real relay on a free port, each with
its own SQLite file, and raw protocol connections to it.

Test folders have no __init__.py, so pytest puts tests/ on sys.path while loading this file:
helper modules here (`raw_client`) import by their bare name from any test folder.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from pg_support import PrivateServer, empty_database, session_database
from raw_client import ConnectRaw, RawClient, connect_raw
from relay_support import running_relay

from channel_relay.server import Relay

FORMATS = ["msgpack", "json"]
ENGINES = ["sqlite", "postgresql"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests on a relay run on each engine: a module narrows the list with its own `ENGINES`.
    Interop modules run on SQLite unless they name both (the key ones do: ably-js through
    each engine, without doubling the whole suite's time)."""
    if "engine" not in metafunc.fixturenames:
        return
    default = ["sqlite"] if "interop" in metafunc.definition.path.parts else ENGINES
    metafunc.parametrize("engine", getattr(metafunc.module, "ENGINES", default), indirect=True)


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> str | None:
    """The store under test: None for SQLite, else the URL of an empty PostgreSQL database."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return None
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def relay(tmp_path: Path, engine: str | None) -> AsyncIterator[Relay]:
    """A relay on an ephemeral port of 127.0.0.1 with key APP_KEY, serving in the test's event
    loop, on each engine: its own SQLite file, and an empty PostgreSQL database."""
    async with running_relay(tmp_path, store=engine) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A PostgreSQL database of this session's own (see pg_support): its URL."""
    with session_database() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """The session's PostgreSQL database, emptied for this test."""
    asyncio.run(empty_database(postgres_database))
    return postgres_database


@pytest.fixture
def own_postgres() -> Iterator[PrivateServer]:
    """A PostgreSQL server of this test's own (about a second to make), to stop and start."""
    private = PrivateServer()
    try:
        private.start()
        yield private
    finally:
        private.remove()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(params=FORMATS)
def fmt(request: pytest.FixtureRequest) -> str:
    """The wire format: msgpack (node default, useBinaryProtocol true) or json."""
    return request.param


@pytest.fixture
async def raw(relay: Relay) -> AsyncIterator[ConnectRaw]:
    """connect(format='json', **params) -> a CONNECTED RawClient on `relay`; closed afterwards."""
    opened: list[RawClient] = []

    async def connect(format: str = "json", **params: str) -> RawClient:
        client, first = await connect_raw(relay.port, relay.default_key, format, **params)
        assert first.get("action") == 4, f"expected CONNECTED, got {first}"
        opened.append(client)
        return client

    yield connect
    for client in opened:
        await client.close()


class _Tracebacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info is not None or record.name.startswith("aiohttp"):
            self.records.append(record)


@pytest.fixture
def no_tracebacks() -> Iterator[None]:
    """Fails the test if the relay logged a traceback, or aiohttp logged anything (its error
    paths, which the relay must never reach): hostile input is answered, not crashed on."""
    handler = _Tracebacks()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
    assert not handler.records, [
        f"{r.name}: {r.getMessage()} {r.exc_info[1]!r}" if r.exc_info else r.getMessage()
        for r in handler.records
    ]
