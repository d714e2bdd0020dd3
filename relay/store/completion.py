"""A group commit's outcomes reported on the event loop, in submission order (both engines).

The relay wraps each commit's completions in a scope of its own (`Store.completions`): it corks
its sockets there, so what one commit delivers to a socket leaves in one write. The store knows
nothing of sockets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from channel_relay.store.base import WriteOp

__all__ = ["Call", "CompletionScope", "Outcome", "complete", "no_scope", "settle"]

log = logging.getLogger(__name__)

Outcome = tuple[Any, BaseException | None]
CompletionScope = Callable[[], AbstractContextManager[None]]
no_scope: CompletionScope = nullcontext


class Call:
    """A write that is not a log append (creating a channel, adding keys): the engine's writer
    runs `fn` on its connection, and `future` gets the result."""

    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[..., Any], future: asyncio.Future[Any]) -> None:
        self.fn = fn
        self.future = future


def complete(
    ops: Sequence[WriteOp | Call], outcomes: Sequence[Outcome], scope: CompletionScope
) -> None:
    with scope():
        for op, (result, error) in zip(ops, outcomes, strict=True):
            if isinstance(op, Call):
                settle(op.future, result, error)
                continue
            try:
                op.done(result, error)
            except Exception:
                log.exception("write completion failed")


def settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
