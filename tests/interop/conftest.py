"""Fixtures that put the unmodified ably-js SDK in front of a relay.

`relay`, `fmt` and `raw` (raw WebSocket clients) come from tests/conftest.py, shared with the
integration tests; `relay` serves in the test's own event loop. `run_node` runs a script of
tests/interop/scripts with node as an asyncio subprocess, so the relay keeps serving while node
talks to it. Scripts report one JSON object on a "RESULT " line (see lib/relay.mjs).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from continuity_support import NodeProcess, RelayProcess, StartProxy, TcpProxy
from interop_support import RunNode

if TYPE_CHECKING:
    from channel_relay.server import Relay

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "scripts"
NODE_MODULES = HERE / "node_modules"
RESULT_PREFIX = "RESULT "


@pytest.fixture(scope="session")
def node() -> str:
    """The node executable, with the pinned packages installed; fails loudly otherwise."""
    path = shutil.which("node")
    if path is None:
        pytest.fail("node (20+) is not on PATH; the interop tests drive the real ably-js with it")
    if not (NODE_MODULES / "ably" / "package.json").exists():
        pytest.fail(
            f"{NODE_MODULES} is missing: run `make test` (or `cd tests/interop && npm ci`) "
            "to install the pinned ably-js before running the interop tests"
        )
    return path


@pytest.fixture
def run_node(node: str, relay: Relay) -> RunNode:
    """Run tests/interop/scripts/<script> against `relay`; return its parsed RESULT object.

    Fails the test with node's stdout and stderr when the script exits non-zero, reports a
    failure, prints no RESULT line, or outlives `deadline` seconds (then it is killed).
    """

    async def run(
        script: str,
        *,
        format: str = "msgpack",
        args: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        deadline: float = 30.0,
        key: str | None = None,
    ) -> dict[str, Any]:
        path = SCRIPTS / script
        assert path.exists(), f"no such interop script: {path}"
        full_env = {
            **os.environ,
            "RELAY_PORT": str(relay.port),
            "RELAY_KEY": key or relay.default_key,
            "RELAY_FORMAT": format,
            "RELAY_ARGS": json.dumps(args or {}),
            "RELAY_TIMEOUT_MS": str(int(deadline * 1000) - 2000),
            **(env or {}),
        }
        proc = await asyncio.create_subprocess_exec(
            node,
            str(path),
            cwd=str(HERE),
            env=full_env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(deadline):
                out, err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            out, err = await proc.communicate()
            pytest.fail(_explain(script, format, f"killed after {deadline} s", out, err))
        result = _result_line(out)
        if proc.returncode != 0 or result is None or "failure" in result:
            pytest.fail(_explain(script, format, f"exit status {proc.returncode}", out, err))
        return result

    return run


def _result_line(out: bytes) -> dict[str, Any] | None:
    # Lines end at "\n" only: a result may hold U+2028 and other characters splitlines() breaks at.
    for line in reversed(out.decode(errors="replace").split("\n")):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    return None


def _explain(script: str, format: str, why: str, out: bytes, err: bytes) -> str:
    return (
        f"node {script} (format={format}) failed: {why}\n"
        f"--- stdout ---\n{out.decode(errors='replace')[-6000:]}\n"
        f"--- stderr ---\n{err.decode(errors='replace')[-6000:]}"
    )


@pytest.fixture
async def proxies() -> AsyncIterator[StartProxy]:
    """start(port) -> a TcpProxy in front of `port` (silence, refuse...); closed afterwards."""
    made: list[TcpProxy] = []

    async def start(target: int) -> TcpProxy:
        proxy = TcpProxy(target)
        await proxy.start()
        made.append(proxy)
        return proxy

    yield start
    for proxy in made:
        await proxy.close()


@pytest.fixture
async def nodes() -> AsyncIterator[list[NodeProcess]]:
    """Node processes a test starts while it watches their progress; killed afterwards."""
    made: list[NodeProcess] = []
    yield made
    for node in made:
        node.kill()
        await node.proc.wait()


@pytest.fixture
async def processes() -> AsyncIterator[list[RelayProcess]]:
    """Relay processes a test starts (to kill and restart them); killed afterwards."""
    made: list[RelayProcess] = []
    yield made
    for relay in made:
        relay.kill()
        await relay.proc.wait()
