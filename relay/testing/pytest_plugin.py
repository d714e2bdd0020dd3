"""The pytest plugin (entry point `pytest11: channel_relay`): a relay for the session and a fresh
app per test.

Fixtures:
    relay_server    session: a RelayThread (sandbox on, throwaway database, free port of
                    localhost); `.url`, `.port`, `.run(coro)`, `.relay` (the Relay)
    relay_app_spec  function: the `post_apps`-shaped spec `relay_app` is made from; override it
                    in a conftest.py or a test module for other keys, namespaces or fixtures
    relay_app       function: a SandboxApp made from `relay_app_spec`, dropped after the test;
                    `.key`, `.keys`, `.ably_js_options()`, `.ably_python_options()`,
                    `.client_options()`, `.token()`, `.reset()`, `.drop()`, `.faults`
    relay_faults    function: `relay_app.faults`

Marker:
    @pytest.mark.relay_fixture("chat.jsonl", ...)  load these fixture files (paths relative to
                    the test module) into `relay_app` before the test: its channels come with
                    their messages, serials, versions and presence history

With pytest-xdist every worker has its own relay on its own port: nothing is shared.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from channel_relay.testing.app import DEFAULT_SPEC, SandboxApp, create_app
from channel_relay.testing.faults import AppFaults
from channel_relay.testing.server import RelayThread

__all__ = ["relay_app", "relay_app_spec", "relay_faults", "relay_server"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "relay_fixture(*files): load fixture files into relay_app before the test"
    )


@pytest.fixture(scope="session")
def relay_server() -> Iterator[RelayThread]:
    """A relay in a background thread for the whole session (each xdist worker has one)."""
    with RelayThread() as server:
        yield server


@pytest.fixture
def relay_app_spec() -> dict[str, Any]:
    """The spec of `relay_app`: one all-powerful key, mutable messages everywhere."""
    return DEFAULT_SPEC


@pytest.fixture
def relay_app(
    relay_server: RelayThread, relay_app_spec: dict[str, Any], request: pytest.FixtureRequest
) -> Iterator[SandboxApp]:
    """A fresh app for this test (with the files of its relay_fixture marks loaded), deleted
    with its data afterwards."""
    app = create_app(relay_server, relay_app_spec)
    try:
        for mark in request.node.iter_markers("relay_fixture"):
            for name in mark.args:
                app.load_fixture(request.path.parent / name)
        yield app
    finally:
        app.drop()


@pytest.fixture
def relay_faults(relay_app: SandboxApp) -> AppFaults:
    """Fault injection on `relay_app`'s channels and connections."""
    return relay_app.faults
