"""A relay in a background thread with its own event loop, for tests sync or async.

The thread owns the loop; every call into the relay (`run`) is handed to that loop and waited
for, so a test's own event loop (pytest-asyncio) and the relay's never mix. `stop()` undoes
everything `start()` did: the relay, its store (writer thread, temporary database directory),
the loop's executor threads, the loop and the thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from channel_relay.config import Settings
from channel_relay.server import Relay

__all__ = ["RelayThread"]

T = TypeVar("T")

# Seconds a call into the relay may take before the test is told so.
_CALL_TIMEOUT = 30.0


class RelayThread:
    """`start()` runs a relay (sandbox on, throwaway database, free port) in a thread;
    `stop()` ends it and leaves nothing behind. Usable as a context manager."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings(host="localhost", port=0, db_path=None, sandbox=True)
        self.relay: Relay | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RelayThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self.relay is not None, "the relay is not running"
        return self.relay.port

    @property
    def host(self) -> str:
        return self.settings.host

    @property
    def url(self) -> str:
        assert self.relay is not None, "the relay is not running"
        return self.relay.url

    def start(self) -> None:
        if self._thread is not None:
            return
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=serve, name="relay-testing-loop", daemon=True)
        self._thread.start()
        ready.wait()
        try:
            self.relay = self.run(self._start_relay())
        except BaseException:
            self.stop()
            raise

    async def _start_relay(self) -> Relay:
        relay = Relay(self.settings)
        await relay.start()
        return relay

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = _CALL_TIMEOUT) -> T:
        """Run `coro` on the relay's loop and return its result (from any other thread)."""
        loop = self._loop
        if loop is None or self._thread is None:
            coro.close()
            raise RuntimeError("the relay is not running")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("RelayThread.run called from the relay's own loop")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            if self.relay is not None:
                self.run(self.relay.stop())
            self.run(_finish_loop())
        finally:
            self.relay = None
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()
            self._loop = None
            self._thread = None


async def _finish_loop() -> None:
    """Cancel what is still pending on the loop and join its executor threads."""
    current = asyncio.current_task()
    pending = [t for t in asyncio.all_tasks() if t is not current]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    loop = asyncio.get_running_loop()
    await loop.shutdown_asyncgens()
    await loop.shutdown_default_executor()
