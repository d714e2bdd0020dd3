"""The processes under test: the relay and the ceiling servers, pinned, watched, always stopped."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from .load.worker import child_setup

__all__ = [
    "BENCH_KEY",
    "ROOT",
    "ServerProcess",
    "cpu_seconds",
    "relay_available",
    "rss_kib",
    "start_ceiling",
    "start_relay",
    "write_bytes",
]

ROOT = Path(__file__).resolve().parent.parent
BENCH_KEY = "benchapp.benchkey:benchsecret"
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def relay_available(src: Path = ROOT) -> bool:
    return (src / "relay" / "server.py").exists() and (src / "relay" / "__main__.py").exists()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def write_bytes(pid: int) -> int:
    """Bytes the process caused to be written to storage, from /proc/PID/io."""
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    return 0


def rss_kib(pid: int) -> int:
    """Resident set size in KiB, from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class ServerProcess:
    """A server subprocess that prints its address on stdout; its output is kept for diagnosis."""

    def __init__(
        self, name: str, argv: list[str], ready: str, cpus: set[int], cwd: Path = ROOT
    ) -> None:
        self.name = name
        self.cwd = cwd
        # Put on PYTHONPATH: where the server's own package comes from, when not this checkout.
        self.import_root: Path | None = None
        self.argv = argv
        self._ready = re.compile(ready)
        self.cpus = cpus
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self._lines: queue.Queue[str] = queue.Queue()

    def start(self, timeout: float = 30.0) -> ServerProcess:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        roots = [str(self.import_root) if self.import_root else None, str(self.cwd)]
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [*roots, env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=child_setup,
        )
        if self.cpus:
            os.sched_setaffinity(self.proc.pid, self.cpus)
        threading.Thread(target=self._drain, daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            match = self._ready.search(line)
            if match:
                self.port = int(match.group(1))
                return self
        self.stop()
        tail = "".join(self.output[-20:])
        raise RuntimeError(f"{self.name} did not start within {timeout:.0f} s:\n{tail}")

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            if len(self.output) < 2000:
                self.output.append(line)
            self._lines.put(line)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def write_bytes(self) -> int:
        return write_bytes(self.pid)

    def loop_lag(self) -> tuple[float, float] | None:
        """(seconds, probes) of the relay's relay_event_loop_lag_seconds so far; None for a
        server that does not expose it (the ceilings, an older relay)."""
        url = f"http://127.0.0.1:{self.port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return None
        values = dict(
            line.split(" ", 1)
            for line in text.splitlines()
            if line.startswith(
                ("relay_event_loop_lag_seconds_sum ", "relay_event_loop_lag_seconds_count ")
            )
        )
        if len(values) != 2:
            return None
        return (
            float(values["relay_event_loop_lag_seconds_sum"]),
            float(values["relay_event_loop_lag_seconds_count"]),
        )

    def tail(self, n: int = 20) -> str:
        return "".join(self.output[-n:])

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5.0)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5.0)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_relay(
    db: Path,
    cpus: set[int],
    src: Path = ROOT,
    timeout: float = 30.0,
    store: str | None = None,
    workers: int = 1,
) -> ServerProcess:
    """`python -m channel_relay serve` from the checkout `src` (default: this one), free port;
    on the PostgreSQL database `store` instead of the SQLite file `db` when given."""
    argv = [sys.executable, "-m", "channel_relay", "serve", "--host", "127.0.0.1", "--port", "0"]
    argv += ["--store", store] if store else ["--db", str(db)]
    argv += ["--key", BENCH_KEY, "--workers", str(workers)]
    ready = r"relay listening on http://127\.0\.0\.1:(\d+)"
    server = ServerProcess("relay", argv, ready, cpus, cwd=src)
    if src != ROOT:
        server.import_root = _import_root(src)
    return server.start(timeout)


def _import_root(src: Path) -> Path:
    """A folder where `channel_relay` is the checkout `src`'s relay/: on PYTHONPATH it comes
    before the editable install of this checkout, so another checkout can be measured."""
    root = Path(tempfile.mkdtemp(prefix="bench-src-"))
    (root / "channel_relay").symlink_to(src / "relay", target_is_directory=True)
    return root


def start_ceiling(cpus: set[int], timeout: float = 30.0) -> ServerProcess:
    argv = [sys.executable, "-m", "bench.ceilings", "--port", "0"]
    server = ServerProcess("ceiling", argv, r"ceiling listening on http://127\.0\.0\.1:(\d+)", cpus)
    return server.start(timeout)


@contextlib.contextmanager
def running(server: ServerProcess) -> Iterator[ServerProcess]:
    try:
        yield server
    finally:
        server.stop()
