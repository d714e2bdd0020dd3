"""`relay serve --workers N`: N relay processes serving one port, so every core serves.

The kernel spreads new connections over the processes (SO_REUSEPORT); they share everything
else through PostgreSQL, as separate nodes would (channels, serials, history, presence, keys),
so it does not matter which process a client reaches. With SQLite it is refused: one database
file has one writer.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.synchronize import Event
from types import FrameType
from typing import Any

from channel_relay.config import Settings

__all__ = ["run_workers"]

# Seconds a worker may take to start listening.
_START_SECONDS = 60.0


def run_workers(settings: Settings, start_one: Callable[[Settings, bool, Event], None]) -> int:
    """Start `settings.workers` processes running `start_one(settings, first, ready)`, one
    after the other (the first makes whatever the database lacks, such as the default key),
    then wait for them; SIGTERM and SIGINT are passed on. The exit status: 0 when every worker
    stopped cleanly."""
    if settings.store is None:
        print(
            f"relay: --workers {settings.workers} needs --store postgresql://...: processes "
            "share the log through PostgreSQL (a SQLite file has one writer)",
            file=sys.stderr,
        )
        return 2
    context = multiprocessing.get_context("spawn")
    reserved, port = _reserve_port(settings)
    shared = replace(settings, port=port)
    workers: list[Any] = []

    def stop(signum: int, frame: FrameType | None) -> None:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()  # SIGTERM: the worker drains as a single relay does

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        for index in range(settings.workers):
            ready = context.Event()
            worker = context.Process(
                target=start_one, args=(shared, index == 0, ready), name=f"relay-worker-{index}"
            )
            worker.start()
            workers.append(worker)
            while not ready.wait(0.2):
                if not worker.is_alive():
                    stop(signal.SIGTERM, None)
                    for other in workers:
                        other.join()
                    return 1
        print(f"relay: {settings.workers} workers on port {port}", flush=True)
        for worker in workers:
            worker.join()
    finally:
        if reserved is not None:
            reserved.close()
    return 0 if all(worker.exitcode == 0 for worker in workers) else 1


def _reserve_port(settings: Settings) -> tuple[socket.socket | None, int]:
    """Port 0 asks for any free port: pick one the workers then share (held, not listened on,
    until they stop)."""
    if settings.port != 0:
        return None, settings.port
    family, _, _, _, address = socket.getaddrinfo(
        settings.host, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    return sock, int(sock.getsockname()[1])
