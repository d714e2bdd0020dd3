"""`relay serve` as an operator meets it: the banner (no secret that came from outside), one
line and a non-zero exit for a start that cannot succeed, one line for the drain, and the
INFO lines of what happens, in JSON with --log-format json."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from pg_support import with_database

from channel_relay.client import Realtime

KEY = "cliapp.k1:s3cret-from-outside"


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    return {**env, **(extra or {})}


@dataclass
class Serving:
    proc: asyncio.subprocess.Process
    banner: list[str]
    port: int

    async def stop(self) -> tuple[int, str, str]:
        self.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            out, err = await self.proc.communicate()
        return self.proc.returncode or 0, out.decode(), err.decode()


async def _spawn(args: tuple[str, ...], cwd: Path, env: dict[str, str] | None):
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "channel_relay", "serve", *args,
        cwd=cwd, env=_env(env), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator:
    started: list[asyncio.subprocess.Process] = []

    async def start(*args: str, env: dict[str, str] | None = None, cwd: Path = tmp_path):
        proc = await _spawn(("--port", "0", *args), cwd, env)
        started.append(proc)
        assert proc.stdout is not None
        banner: list[str] = []
        async with asyncio.timeout(30):
            while not banner or not banner[-1].startswith("ably-js:"):
                line = (await proc.stdout.readline()).decode()
                assert line, f"relay exited: {banner} {(await proc.stderr.read()).decode()}"
                banner.append(line.rstrip("\n"))
        port = re.search(r":(\d+)$", banner[0])
        assert port, banner
        return Serving(proc, banner, int(port.group(1)))

    yield start
    for proc in started:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _fails(*args: str, cwd: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "channel_relay", "serve", *args,
        cwd=cwd, env=_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert not out, out
    return proc.returncode or 0, err.decode()


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("relay: cannot start: "), err
    return lines[0]


async def test_banner_prints_the_generated_key_whole_and_says_when_sandbox_is_on(serve) -> None:
    relay = await serve("--sandbox")
    key_line = next(line for line in relay.banner if line.startswith("key: "))
    assert re.fullmatch(r"key: [\w-]+\.[\w-]+:[\w-]+", key_line)
    rest = await relay.proc.stdout.readline()
    assert rest.decode().startswith("sandbox: on")


@pytest.mark.parametrize("where", ["flag", "variable", "config"])
async def test_banner_never_prints_a_secret_given_from_outside(
    serve, tmp_path: Path, where: str
) -> None:
    if where == "flag":
        relay = await serve("--key", KEY)
        source = "the --key flag"
    elif where == "variable":
        relay = await serve(env={"RELAY_KEYS": KEY})
        source = "the RELAY_KEYS variable"
    else:
        config = tmp_path / "relay.toml"
        config.write_text(f'[server]\nkeys = ["{KEY}"]\n')
        relay = await serve("--config", str(config))
        source = f"the config file {config}"
    text = "\n".join(relay.banner)
    assert "s3cret" not in text
    assert f"key: cliapp.k1 (its secret is in {source})" in relay.banner


async def test_sigterm_prints_one_line_about_the_drain(serve) -> None:
    relay = await serve("--key", KEY)
    url = f"http://127.0.0.1:{relay.port}"
    async with Realtime(KEY, url=url) as client:
        await client.channels.get("d").attach()
        code, out, _ = await relay.stop()
    assert code == 0
    assert out.strip().splitlines() == [
        "SIGTERM: draining: 1 connection(s) told to reconnect elsewhere once what they "
        "published is stored (at most 10 s)"
    ]


async def test_a_busy_port_is_one_line_and_exit_1(serve, tmp_path: Path) -> None:
    first = await serve("--memory", "--host", "127.0.0.1", "--key", KEY)
    taken = ("--host", "127.0.0.1", "--port", str(first.port))
    code, err = await _fails("--memory", "--key", KEY, *taken, cwd=tmp_path)
    assert code == 1
    assert "is already in use" in _one_line(err)


async def test_a_missing_directory_is_one_line_and_exit_1(tmp_path: Path) -> None:
    code, err = await _fails("--db", str(tmp_path / "nope" / "relay.db"), cwd=tmp_path)
    assert code == 1
    assert f"the directory {tmp_path / 'nope'} does not exist" in _one_line(err)


async def test_a_postgresql_that_cannot_serve_is_one_line_naming_it_and_exit_1(
    tmp_path: Path, postgres_database: str
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    code, err = await _fails("--store", f"postgresql://u:pw@127.0.0.1:{free}/x", cwd=tmp_path)
    assert code == 1
    line = _one_line(err)
    assert f"database: PostgreSQL at 127.0.0.1:{free}/x: " in line and "pw" not in line
    missing = with_database(postgres_database, "relay_no_such_database")
    code, err = await _fails("--store", missing, cwd=tmp_path)
    assert code == 1
    assert 'database "relay_no_such_database" does not exist' in _one_line(err)


async def test_a_page_corrupted_database_is_refused_at_start(tmp_path: Path) -> None:
    db = tmp_path / "relay.db"
    with sqlite3.connect(db) as made:
        made.execute("CREATE TABLE filler (id INTEGER PRIMARY KEY, body TEXT)")
        made.executemany("INSERT INTO filler VALUES (?, ?)", [(i, "x" * 400) for i in range(2000)])
    made.close()
    with db.open("r+b") as file:
        file.seek(4096 * 20)
        file.write(b"\xa5" * 4096)
    code, err = await _fails("--db", str(db), cwd=tmp_path)
    assert code == 1
    assert f"{db} is corrupt" in _one_line(err)

    (tmp_path / "text.db").write_text("not a database at all\n" * 100)
    code, err = await _fails("--db", str(tmp_path / "text.db"), cwd=tmp_path)
    assert code == 1
    assert "is not a SQLite database" in _one_line(err)


def _read_only(path: Path) -> None:
    """Make `path` unwritable, for root too (which ignores modes): immutable as well."""
    path.chmod(0o555 if path.is_dir() else 0o444)
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True)


def _writable(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    path.chmod(0o755 if path.is_dir() else 0o644)


async def test_a_read_only_database_is_refused_at_start(tmp_path: Path) -> None:
    db = tmp_path / "relay.db"
    sqlite3.connect(db).close()
    _read_only(db)
    try:
        code, err = await _fails("--db", str(db), cwd=tmp_path)
    finally:
        _writable(db)
    assert code == 1
    assert f"{db} is read-only" in _one_line(err)


async def test_an_unwritable_directory_is_refused_at_start(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    _read_only(folder)
    try:
        code, err = await _fails("--db", str(folder / "relay.db"), cwd=tmp_path)
    finally:
        _writable(folder)
    assert code == 1
    assert f"the directory {folder} is not writable" in _one_line(err)


async def test_json_logs_tell_connects_disconnects_auth_failures_and_refused_publishes(
    serve,
) -> None:
    relay = await serve("--key", KEY, "--log-format", "json")
    url = f"http://127.0.0.1:{relay.port}"
    async with Realtime(KEY, url=url, client_id="ann") as client:
        with pytest.raises(Exception):  # noqa: B017
            await client.channels.get("[meta]x").publish("m", "x")
    async with aiohttp.ClientSession() as http:
        wrong = {"Authorization": aiohttp.encode_basic_auth("cliapp.k1", "wrong")}
        async with http.get(f"{url}/channels/x/messages", headers=wrong) as resp:
            assert resp.status == 401
    _, _, err = await relay.stop()
    entries = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    messages = [e["msg"] for e in entries]
    assert all({"ts", "level", "logger", "msg"} <= set(e) for e in entries)
    connected = next(e for e in entries if e["msg"].startswith("connected (new, basic"))
    assert "clientId ann" in connected["msg"] and "connection_id" in connected
    refused = next(e for e in entries if e["msg"].startswith("publish refused on [meta]x"))
    assert refused["code"] in (40010, 40160) and refused["channel"] == "[meta]x"
    assert any(m.startswith("disconnected: closed by the client") for m in messages)
    auth = next(e for e in entries if e["msg"].startswith("GET /channels/x/messages refused"))
    assert auth["code"] == 40101
