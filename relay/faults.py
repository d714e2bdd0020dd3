"""Fault injection for application tests: failing publishes and delayed deliveries per channel.

Applications that test against Ably mock it to see how they cope with a refused publish or a slow
channel. The relay does the real thing instead: a test asks for "the next N publishes on this
channel fail with error E" or "deliveries on this channel arrive D ms late", and the channel layer
consults this registry (only a relay started with `--sandbox` or by the pytest plugin has one).
Dropping a connection needs no hook: see `relay.provisioning.Sandbox.drop_connections`.

Nothing here imports from the layers above; `channel_relay.channels.channel` calls
`check_publish` and `defer`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from channel_relay.protocol.errors import AblyError

__all__ = ["Faults", "PublishFailure", "fault_error"]

log = logging.getLogger(__name__)

_Key = tuple[str, str]


@dataclass(slots=True)
class PublishFailure:
    """The next `remaining` publishes on a channel fail with `error`."""

    remaining: int
    error: AblyError


def fault_error(code: int, status: int | None = None, message: str | None = None) -> AblyError:
    """An AblyError for an injected fault; the HTTP status defaults to the code's first three
    digits when they are one (40160 -> 401), else 500."""
    if status is None:
        head = code // 100
        status = head if 400 <= head < 600 else 500
    return AblyError(code, status, message or f"Injected fault (code {code})")


class Faults:
    """Active faults by (app id, channel name)."""

    def __init__(self) -> None:
        self._failures: dict[_Key, PublishFailure] = {}
        self._delays: dict[_Key, float] = {}
        # Deliveries held back per channel, oldest first, with the loop time each is due.
        self._held: dict[_Key, collections.deque[tuple[float, Callable[[], None]]]] = {}
        self._timers: dict[_Key, asyncio.TimerHandle] = {}

    # Setting faults

    def fail_publishes(self, app_id: str, channel: str, count: int, error: AblyError) -> None:
        """The next `count` publishes on the channel (realtime: NACK; REST: error reply)."""
        if count <= 0:
            self._failures.pop((app_id, channel), None)
        else:
            self._failures[(app_id, channel)] = PublishFailure(count, error)

    def delay_deliveries(self, app_id: str, channel: str, delay_ms: float) -> None:
        """Hold every delivery on the channel for `delay_ms` (0 ends the delay; what is held
        still arrives when due, in order)."""
        if delay_ms <= 0:
            self._delays.pop((app_id, channel), None)
        else:
            self._delays[(app_id, channel)] = delay_ms / 1000

    def clear(self, app_id: str, channel: str | None = None) -> None:
        """End the app's faults (on one channel, or all of them)."""
        for table in (self._failures, self._delays):
            for key in [k for k in table if k[0] == app_id and channel in (None, k[1])]:
                del table[key]

    def active(self, app_id: str) -> dict[str, Any]:
        """The app's faults as JSON: {"publishFailures": {...}, "delays": {...}}."""
        return {
            "publishFailures": {
                ch: {"remaining": f.remaining, "code": f.error.code, "statusCode": f.error.status}
                for (app, ch), f in self._failures.items()
                if app == app_id
            },
            "delays": {ch: int(d * 1000) for (app, ch), d in self._delays.items() if app == app_id},
        }

    def close(self) -> None:
        """Cancel held deliveries' timers (the relay is stopping)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._held.clear()

    # Hooks for the channel layer

    def check_publish(self, app_id: str, channel: str) -> None:
        """Raise the injected error if this publish is meant to fail."""
        failure = self._failures.get((app_id, channel))
        if failure is None:
            return
        failure.remaining -= 1
        if failure.remaining <= 0:
            del self._failures[(app_id, channel)]
        raise failure.error

    def defer(self, app_id: str, channel: str, deliver: Callable[[], None]) -> bool:
        """Hold `deliver` when the channel has a delay (or deliveries still held, so order is
        kept); False means deliver now."""
        key = (app_id, channel)
        delay = self._delays.get(key)
        held = self._held.get(key)
        if delay is None and not held:
            return False
        loop = asyncio.get_running_loop()
        if held is None:
            held = self._held[key] = collections.deque()
        held.append((loop.time() + (delay or 0), deliver))
        if key not in self._timers:
            self._timers[key] = loop.call_at(held[0][0], self._release, key)
        return True

    def _release(self, key: _Key) -> None:
        del self._timers[key]
        held = self._held.get(key)
        loop = asyncio.get_running_loop()
        while held and held[0][0] <= loop.time():
            _, deliver = held.popleft()
            try:
                deliver()
            except Exception:  # a failed delivery must not strand the ones behind it
                log.exception("delayed delivery on %s failed", key[1])
        if held:
            self._timers[key] = loop.call_at(held[0][0], self._release, key)
        else:
            self._held.pop(key, None)
