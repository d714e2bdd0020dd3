"""`relay serve --workers N`: N processes on one port over PostgreSQL, seen by a client as one
relay; refused in one line with SQLite."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import sys
from pathlib import Path

import aiohttp
from raw_client import connect_raw
from relay_support import APP_KEY

REPO = Path(__file__).resolve().parents[2]
HEADERS = {"Authorization": "Basic " + base64.b64encode(APP_KEY.encode()).decode()}
MESSAGE = 15


def _workers(pid: int) -> int:
    """How many worker processes `pid` runs (its children started by multiprocessing's spawn,
    from /proc; its resource tracker is not one)."""
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid and b"spawn_main" in cmdline:
                count += 1
    return count


async def _serve(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "channel_relay",
        "serve",
        "--host",
        "127.0.0.1",
        "--key",
        APP_KEY,
        "--memory",
        "--log-level",
        "WARNING",
        *args,
        cwd=str(REPO),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_workers_without_postgresql_are_refused_in_one_line() -> None:
    proc = await _serve("--workers", "2", "--port", "0")
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "--workers 2 needs --store postgresql://" in lines[0], lines


async def test_two_workers_share_one_port_and_serve_as_one_relay(postgres_url: str) -> None:
    proc = await _serve("--workers", "2", "--port", "0", "--store", postgres_url)
    assert proc.stdout is not None
    port = 0
    async with asyncio.timeout(60):
        while True:
            line = (await proc.stdout.readline()).decode()
            assert line, "the workers exited before listening"
            if "workers on port" in line:
                port = int(line.rsplit(" ", 1)[1])
                break
    try:
        assert _workers(proc.pid) == 2
        subscriber, connected = await connect_raw(port, APP_KEY, "json")
        assert connected["action"] == 4
        assert (await subscriber.attach("spread"))["action"] == 11
        # Each publish on a connection of its own: the kernel spreads them over the workers,
        # and the subscriber, on one of them, gets every one in order.
        for i in range(20):
            async with (
                aiohttp.ClientSession() as http,
                http.post(
                    f"http://127.0.0.1:{port}/channels/spread/messages",
                    json={"data": f"m{i}"},
                    headers=HEADERS,
                ) as resp,
            ):
                assert resp.status == 201, await resp.text()
        received: list[str] = []
        while len(received) < 20:
            frame = await subscriber.recv_action(MESSAGE, within=20)
            received += [m["data"] for m in frame["messages"]]
        assert received == [f"m{i}" for i in range(20)]
        await subscriber.close()
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 60)
    assert proc.returncode == 0
