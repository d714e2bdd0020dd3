"""Fixtures for the `relay` command's client verbs: the command run as a subprocess (as a person
or a script runs it) against the `relay` fixture of tests/conftest.py, which keeps serving in
the test's event loop meanwhile."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator

import pytest
from cli_support import Done, Live, RunCli, StartCli

from channel_relay.server import Relay

# Wide enough that rich never folds the names and serials a test looks for.
_ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


def _env(relay: Relay, extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    return {
        **env,
        **_ENV,
        "RELAY_URL": f"http://127.0.0.1:{relay.port}",
        "RELAY_KEY": relay.default_key,
        **(extra or {}),
    }


async def _spawn(
    relay: Relay, args: tuple[str, ...], env: dict[str, str] | None
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "channel_relay",
        *args,
        env=_env(relay, env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.fixture
def cli(relay: Relay) -> RunCli:
    """cli("channels", "list", ...) -> Done(code, out, err), against `relay` via RELAY_URL and
    RELAY_KEY (`env` adds or overrides variables)."""

    async def run(*args: str, env: dict[str, str] | None = None) -> Done:
        proc = await _spawn(relay, args, env)
        async with asyncio.timeout(60):
            out, err = await proc.communicate()
        return Done(proc.returncode or 0, out.decode(), err.decode())

    return run


@pytest.fixture
async def cli_live(relay: Relay) -> AsyncIterator[StartCli]:
    """cli_live("channels", "tail", ...) -> a Live command; killed after the test."""
    started: list[Live] = []

    async def start(*args: str) -> Live:
        live = Live(await _spawn(relay, args, None))
        started.append(live)
        return live

    yield start
    for live in started:
        if live.proc.returncode is None:
            live.proc.kill()
            await live.proc.wait()
