"""Fixtures for the deployment tests: relays run as real processes
(`python -m channel_relay serve`), a test certificate authority made with the openssl command,
and node scripts of tests/interop/scripts run against them (the unmodified ably-js pinned there)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

INTEROP = Path(__file__).resolve().parents[1] / "interop"
RESULT_PREFIX = "RESULT "
KEY = "deploy.key1:deploy-secret-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RelayProcess:
    """A relay started with `python -m channel_relay serve`; `stop()` sends SIGTERM and waits."""

    proc: asyncio.subprocess.Process
    port: int
    stderr: bytearray

    async def stop(self, within: float = 20.0) -> int:
        if self.proc.returncode is None:
            self.proc.terminate()
        async with asyncio.timeout(within):
            return await self.proc.wait()


async def start_relay(*args: str, port: int, env: dict[str, str] | None = None) -> RelayProcess:
    """A relay process on `port`, once it prints that it listens."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "channel_relay",
        "serve",
        "--host",
        "localhost",
        "--port",
        str(port),
        "--key",
        KEY,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    assert proc.stdout is not None and proc.stderr is not None
    stderr = bytearray()

    async def drain(stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            stderr.extend(chunk)

    asyncio.get_running_loop().create_task(drain(proc.stderr))
    async with asyncio.timeout(15):
        while True:
            line = await proc.stdout.readline()
            if not line:
                raise AssertionError(f"relay exited at start: {stderr.decode()}")
            if line.startswith(b"relay listening on"):
                break
    asyncio.get_running_loop().create_task(proc.stdout.read())
    return RelayProcess(proc, port, stderr)


@pytest.fixture
async def relays() -> AsyncIterator[list[RelayProcess]]:
    """Relay processes a test starts (append them); each is stopped afterwards."""
    started: list[RelayProcess] = []
    yield started
    for relay in started:
        if relay.proc.returncode is None:
            relay.proc.kill()
            await relay.proc.wait()


@dataclass(frozen=True)
class CertAuthority:
    ca_cert: Path
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> CertAuthority:
    """A certificate authority made for this run, and a server certificate it signed for
    localhost, 127.0.0.1 and ::1."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl command is needed to make the test certificate authority")
    d = tmp_path_factory.mktemp("tls")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, cwd=d)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        "/CN=channel-relay test CA", "-keyout", "ca.key", "-out", "ca.pem",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", "server.key", "-out", "server.csr")  # fmt: skip
    (d / "ext.cnf").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n"
        "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
    )
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem")  # fmt: skip
    return CertAuthority(d / "ca.pem", d / "server.pem", d / "server.key")


@pytest.fixture(scope="session")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.fail("node (20+) is not on PATH; these tests drive the real ably-js with it")
    if not (INTEROP / "node_modules" / "ably" / "package.json").exists():
        pytest.fail(f"{INTEROP}/node_modules is missing: run `make test` (or npm ci there)")
    return path


LineHandler = Callable[[str], Any]


async def run_script(
    node: str,
    script: str,
    *,
    port: int,
    args: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    deadline: float = 60.0,
    on_line: LineHandler | None = None,
) -> dict[str, Any]:
    """Run tests/interop/scripts/<script>, calling `on_line` (may be async) with each stdout
    line as it comes; return the RESULT object, failing the test with node's output if none."""
    proc = await asyncio.create_subprocess_exec(
        node,
        str(INTEROP / "scripts" / script),
        cwd=str(INTEROP),
        env={
            **os.environ,
            "RELAY_PORT": str(port),
            "RELAY_KEY": KEY,
            "RELAY_ARGS": json.dumps(args or {}),
            "RELAY_TIMEOUT_MS": str(int(deadline * 1000) - 2000),
            **(env or {}),
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[str] = []
    err_task = asyncio.create_task(proc.stderr.read())
    try:
        async with asyncio.timeout(deadline):
            while raw := await proc.stdout.readline():
                line = raw.decode(errors="replace").rstrip("\n")
                lines.append(line)
                if on_line is not None:
                    outcome = on_line(line)
                    if asyncio.iscoroutine(outcome):
                        await outcome
            await proc.wait()
    except TimeoutError:
        proc.kill()
        await proc.wait()
    err = (await err_task).decode(errors="replace")
    result = next(
        (json.loads(x[len(RESULT_PREFIX) :]) for x in reversed(lines) if x.startswith("RESULT ")),
        None,
    )
    if proc.returncode != 0 or result is None or "failure" in result:
        pytest.fail(
            f"node {script} failed (exit {proc.returncode})\n--- stdout ---\n"
            + "\n".join(lines)[-6000:]
            + f"\n--- stderr ---\n{err[-6000:]}"
        )
    return result
