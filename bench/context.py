"""What every scenario gets: sizes, core pinning, where the relay is, and a result row builder."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .load.worker import WorkerHandle, spawn
from .servers import BENCH_KEY, ServerProcess, relay_available, start_ceiling, start_relay
from .sizes import Sizes

__all__ = ["Context", "Row", "Unavailable"]


class Unavailable(Exception):
    """The relay (or a feature of it, or node) is not there: the row says so, the run goes on."""


@dataclass
class Row:
    """One line of the table: a figure of the relay next to its ceiling and its target."""

    scenario: str
    case: str
    metric: str
    unit: str
    relay: float | None = None
    ceiling: float | None = None
    ceiling_name: str = ""
    target: str = ""
    met: bool | None = None
    checks: str = ""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.relay is None or not self.ceiling:
            return None
        return self.relay / self.ceiling

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "ratio": self.ratio}


@dataclass
class Context:
    sizes: Sizes
    quick: bool
    server_cpus: set[int]
    load_cpus: set[int]
    workdir: Path
    cache_dir: Path
    relay_src: Path
    log: Any = print
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(
        cls, sizes: Sizes, quick: bool, cache_dir: Path, relay_src: Path, log: Any = print
    ) -> Context:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) >= 2:
            server, load = {cpus[0]}, {cpus[1]}
        else:
            server, load = set(), set()
        workdir = Path(tempfile.mkdtemp(prefix="relay-bench-"))
        cache_dir.mkdir(parents=True, exist_ok=True)
        return cls(sizes, quick, server, load, workdir, cache_dir, relay_src, log)

    @property
    def relay_ok(self) -> bool:
        return relay_available(self.relay_src)

    @contextlib.contextmanager
    def relay(
        self,
        db: Path | None = None,
        store: str | None = None,
        workers: int = 1,
        cpus: set[int] | None = None,
    ) -> Iterator[ServerProcess]:
        """A relay pinned to the server core (or `cpus`), on SQLite or the PostgreSQL `store`."""
        if not self.relay_ok:
            raise Unavailable("relay not built yet (relay/server.py missing)")
        if db is None:
            fd, name = tempfile.mkstemp(suffix=".db", dir=self.workdir)
            os.close(fd)
            os.unlink(name)
            db = Path(name)
        cpus = self.server_cpus if cpus is None else cpus
        server = start_relay(db, cpus, self.relay_src, store=store, workers=workers)
        try:
            yield server
        finally:
            server.stop()

    @contextlib.contextmanager
    def ceiling(self) -> Iterator[ServerProcess]:
        server = start_ceiling(self.server_cpus)
        try:
            yield server
        finally:
            server.stop()

    def endpoint(self, server: ServerProcess) -> dict[str, Any]:
        key = BENCH_KEY if server.name == "relay" else None
        return {"host": "127.0.0.1", "port": server.port, "key": key}

    @contextlib.contextmanager
    def workers(self) -> Iterator[list[WorkerHandle]]:
        """A list to `spawn_into`; every worker in it is stopped on the way out."""
        handles: list[WorkerHandle] = []
        try:
            yield handles
        finally:
            for handle in handles:
                handle.stop()

    def spawn_into(
        self, handles: list[WorkerHandle], target: str, params: dict[str, Any], name: str
    ) -> WorkerHandle:
        handle = spawn(target, params, self.load_cpus, name)
        handles.append(handle)
        return handle


def mean_lag_ms(
    before: tuple[float, float] | None, after: tuple[float, float] | None
) -> float | None:
    """The relay's mean event-loop lag between two `ServerProcess.loop_lag` readings."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1]) * 1000


def seq_checks(seq: dict[str, Any] | None) -> str:
    """'ok' or what went wrong, from a SeqTotals dict."""
    if seq is None:
        return ""
    if not (seq["lost"] or seq["dups"] or seq["reordered"]):
        return "ok"
    return f"LOST {seq['lost']} DUP {seq['dups']} REORDER {seq['reordered']}"


def ack_checks(res: dict[str, Any] | None) -> str:
    """'ok' or what went wrong, from a durable publisher's result (ACK order, NACKs, unACKed)."""
    if res is None:
        return ""
    checks = seq_checks(res["ack_seq"])
    if res["nacks"] or res["unacked"] or res["fatal"]:
        checks += f" NACK {res['nacks']} UNACKED {res['unacked']}"
    return checks


__all__ += ["ack_checks", "seq_checks"]
