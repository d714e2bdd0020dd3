"""A PostgreSQL server for the tests, and a database of their own on it.

The server is the one at RELAY_TEST_POSTGRES (default postgresql://postgres@127.0.0.1:5432/test,
the machine's own). When none answers there, a private one is started from the PostgreSQL
binaries installed on the machine (Debian's postgresql package: initdb and postgres, found on
PATH or under /usr/lib/postgresql/*/bin), in a temporary directory, for the session. Each test
session (each xdist worker) creates a database with a random name and drops it at the end, so
parallel sessions and other users of the server never meet.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
URL_VARIABLE = "RELAY_TEST_POSTGRES"


def server_url() -> str:
    return os.environ.get(URL_VARIABLE, DEFAULT_URL)


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def _answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


def _binaries() -> tuple[str, str] | None:
    candidates = [os.path.dirname(shutil.which("initdb") or "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for folder in candidates:
        initdb, postgres = Path(folder, "initdb"), Path(folder, "postgres")
        if folder and initdb.exists() and postgres.exists():
            return str(initdb), str(postgres)
    return None


def _working_in(folder: str) -> list[int]:
    """The processes whose working directory is `folder`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(entry / "cwd") == folder:
                    found.append(int(entry.name))
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateServer:
    """A throwaway PostgreSQL from the machine's binaries, in a temporary directory, on a port
    of its own; it can be stopped and started again on the same port and data (a server
    restart, as its clients see it)."""

    def __init__(self) -> None:
        found = _binaries()
        if found is None:
            raise RuntimeError(
                f"no PostgreSQL answers at {server_url()} and no initdb/postgres binaries are "
                f"installed: set {URL_VARIABLE} or install Debian's postgresql package"
            )
        initdb, self._postgres = found
        self.folder = tempfile.mkdtemp(prefix="relay-pg-")
        # PostgreSQL refuses to run as root: run it as the postgres account the package made.
        self._as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as_user:
            shutil.chown(self.folder, "postgres")
        self._data = str(Path(self.folder, "data"))
        subprocess.run(
            [
                *self._as_user,
                initdb,
                "-D",
                self._data,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._server: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server; return once it answers."""
        self._server = subprocess.Popen(
            [
                *self._as_user,
                self._postgres,
                "-D",
                self._data,
                "-p",
                str(self.port),
                "-k",
                self.folder,
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not asyncio.run(_answers(self.url)):
            if time.monotonic() > deadline or self._server.poll() is not None:
                raise RuntimeError("the private PostgreSQL did not start")
            time.sleep(0.1)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server as `pg_ctl stop -m <mode>` would: "fast" (SIGINT: every session is
        ended, a clean shutdown) or "immediate" (SIGQUIT: every process exits at once, crash
        recovery at the next start); or "kill": SIGKILL to every process of the server at
        once (a power cut, as the clients see it)."""
        server, self._server = self._server, None
        if server is None:
            return
        if mode == "kill":
            # Each backend is a session of its own (no process group reaches them all), but
            # every process of the server works in its data directory. The postmaster goes in
            # the first round; a child it forked meanwhile, in the next.
            while found := _working_in(self._data):
                for pid in found:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
        else:
            # To the postmaster itself (its pid file's first line): runuser, between us and it,
            # would turn any signal into a SIGTERM (a smart shutdown, waiting for every session).
            pid = int(Path(self._data, "postmaster.pid").read_text().split()[0])
            os.kill(pid, {"fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode])
        server.wait(timeout=60)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def private_server() -> Iterator[str]:
    """Start a throwaway PostgreSQL from the machine's binaries; its admin URL."""
    server = PrivateServer()
    try:
        server.start()
        yield server.url
    finally:
        server.remove()


@contextmanager
def session_database() -> Iterator[str]:
    """A database of this session's own (random name), dropped at the end; its URL."""
    with admin_server() as admin:
        name = f"relay_test_{secrets.token_hex(6)}"
        asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
        try:
            yield with_database(admin, name)
        finally:
            asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def admin_server() -> Iterator[str]:
    """The URL of a server to create databases on: the configured one, or a private one."""
    url = server_url()
    if asyncio.run(_answers(url)):
        yield url
        return
    with private_server() as private:
        yield private


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def empty_database(url: str) -> None:
    """Remove every row (the schema stays): a test starts from an empty store."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        tables = [
            row[0]
            for row in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        ]
        if tables:
            names = ", ".join(f'"{table}"' for table in tables)
            await conn.execute(f"TRUNCATE {names} RESTART IDENTITY")
    finally:
        await conn.close()
