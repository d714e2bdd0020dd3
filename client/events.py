"""A small event emitter and the async-iterator subscription both channels and turns use."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar

__all__ = ["EventEmitter", "Subscription"]

log = logging.getLogger("channel_relay.client")
T = TypeVar("T")
_CLOSED = object()


class EventEmitter:
    """`on(event, callback)` returns a function that removes the listener. Callbacks may be
    plain functions or coroutine functions (run as tasks, so an emitter never blocks)."""

    def __init__(self) -> None:
        self._listeners: dict[str, list[Callable[..., Any]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def on(self, event: str, callback: Callable[..., Any]) -> Callable[[], None]:
        self._listeners.setdefault(event, []).append(callback)

        def off() -> None:
            listeners = self._listeners.get(event, [])
            if callback in listeners:
                listeners.remove(callback)

        return off

    def emit(self, event: str, *args: Any) -> None:
        for callback in list(self._listeners.get(event, ())):
            try:
                result = callback(*args)
            except Exception:
                log.exception("listener for %r raised", event)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)


class Subscription(Generic[T]):
    """An async iterator over items pushed by a producer; `close()` ends the iteration.

    `fail(error)` makes the next read raise `error` (the iterator stays usable afterwards
    unless the error is final). Items queue without bound: a slow reader holds memory, never
    stalls the connection.
    """

    def __init__(self, on_close: Callable[[], None] | None = None) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._on_close = on_close
        self.closed = False

    def push(self, item: T) -> None:
        if not self.closed:
            self._queue.put_nowait(item)

    def fail(self, error: BaseException) -> None:
        if not self.closed:
            self._queue.put_nowait(error)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put_nowait(_CLOSED)
            if self._on_close is not None:
                self._on_close()

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        if self.closed and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if item is _CLOSED:
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        return item

    async def get(self, timeout: float | None = None) -> T:  # noqa: ASYNC109
        """The next item, waiting at most `timeout` seconds (TimeoutError)."""
        async with asyncio.timeout(timeout):
            return await self.__anext__()
