"""Load worker processes: spawned with multiprocessing, pinned to a core, driven over a Pipe.

A worker is an async function `main(params, inbox)` in some module; it replies with `inbox.send`
and reads commands with `await inbox.recv()`. The orchestrator holds a `WorkerHandle` and talks to
it synchronously with deadlines: nothing waits forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib
import multiprocessing
import os
import resource
import signal
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

__all__ = [
    "Inbox",
    "WorkerError",
    "WorkerHandle",
    "child_setup",
    "raise_nofile",
    "spawn",
    "until",
]

_ctx = multiprocessing.get_context("spawn")


async def until(condition: Callable[[], bool], limit_s: float, step: float = 0.01) -> bool:
    """Poll `condition` every `step` s for at most `limit_s` s; True when it held.

    The conditions are counters that protocol callbacks update inside `data_received`; polling them
    every few ms costs nothing next to the load and keeps every wait bounded.
    """
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(step)
    return True


class WorkerError(Exception):
    """A worker failed, died or missed its deadline."""


def raise_nofile() -> None:
    """Raise RLIMIT_NOFILE to its hard limit (thousands of sockets per process)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def die_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies (no orphans after a crash)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def child_setup() -> None:
    """preexec_fn of the server subprocesses."""
    raise_nofile()
    die_with_parent()


class Inbox:
    """The worker's end of the Pipe, readable from asyncio without blocking the loop."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def recv(self, limit_s: float = 3600.0) -> Any:
        if not await until(self._conn.poll, limit_s, step=0.005):
            raise TimeoutError("no command from the orchestrator")
        return self._conn.recv()

    def send(self, obj: Any) -> None:
        self._conn.send(obj)

    def poll(self) -> bool:
        return self._conn.poll()


def _child(
    module: str, func: str, params: dict[str, Any], conn: Connection, cpus: set[int]
) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)
    raise_nofile()
    die_with_parent()
    main = getattr(importlib.import_module(module), func)
    try:
        asyncio.run(main(params, Inbox(conn)))
    except Exception as exc:
        conn.send({"error": f"{type(exc).__name__}: {exc}"})
        raise


class WorkerHandle:
    """The orchestrator's end: send commands, wait for replies with a deadline, stop for sure."""

    def __init__(self, proc: Any, conn: Connection, name: str) -> None:
        self.proc = proc
        self.conn = conn
        self.name = name

    @property
    def pid(self) -> int:
        return int(self.proc.pid)

    def send(self, obj: Any) -> None:
        self.conn.send(obj)

    def recv(self, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while not self.conn.poll(0.05):
            if not self.proc.is_alive():
                raise WorkerError(f"{self.name} died (exit {self.proc.exitcode})")
            if time.monotonic() > deadline:
                raise WorkerError(f"{self.name}: no reply within {timeout:.0f} s")
        try:
            reply = self.conn.recv()
        except EOFError:
            raise WorkerError(f"{self.name} closed its pipe (exit {self.proc.exitcode})") from None
        if isinstance(reply, dict) and "error" in reply and len(reply) == 1:
            raise WorkerError(f"{self.name}: {reply['error']}")
        return reply

    def request(self, obj: Any, timeout: float) -> Any:
        self.send(obj)
        return self.recv(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc.is_alive():
            with contextlib.suppress(OSError):
                self.conn.send({"cmd": "close"})
            self.proc.join(timeout)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(2.0)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(2.0)


def spawn(target: str, params: dict[str, Any], cpus: set[int], name: str = "") -> WorkerHandle:
    """Start `module:function` in a new process pinned to `cpus` (empty set: no pinning)."""
    module, func = target.split(":")
    parent, child = _ctx.Pipe()
    proc = _ctx.Process(
        target=_child, args=(module, func, params, child, cpus), name=name or func, daemon=True
    )
    proc.start()
    child.close()
    return WorkerHandle(proc, parent, name or func)
