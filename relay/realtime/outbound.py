"""The relay-wide budget for bytes queued to clients and not yet taken by their sockets.

Each socket also has its own bound (settings.max_outbound_buffer), but many stalled subscribers
each under it can still add up to more memory than the host has: past
settings.max_outbound_total the relay sheds the sockets holding the most, largest first.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["OutboundBudget", "Sheddable"]


class Sheddable(Protocol):
    """What the budget needs of a connection's socket."""

    def buffered(self) -> int:
        """Bytes queued on the socket now."""

    def shed(self) -> None:
        """Too slow: tell the client (DISCONNECTED), stop sending it anything, close soon."""

    def abort(self) -> None:
        """Drop the socket now, discarding what it holds."""


class OutboundBudget:
    """Tracks what each socket had queued at its last write; exact sizes are re-read only when
    the sum passes the limit (a socket drains without telling anyone, so the sum over-counts,
    never under-counts, between writes)."""

    def __init__(self, limit: int) -> None:
        # 0: no relay-wide limit (each socket's own still applies).
        self.limit = limit
        self._sizes: dict[Sheddable, int] = {}
        self._shed: set[Sheddable] = set()
        self._total = 0

    def note(self, socket: Sheddable, size: int) -> None:
        """`socket` now holds `size` bytes; shed sockets if that takes the relay past its limit."""
        self._total += size - self._sizes.get(socket, 0)
        self._sizes[socket] = size
        if self.limit and self._total > self.limit:
            self._rebalance()

    def shedding(self, socket: Sheddable) -> None:
        """`socket` was shed: it still holds its bytes while its DISCONNECTED drains, and is the
        first to go if the relay needs the room."""
        self._shed.add(socket)

    def forget(self, socket: Sheddable) -> None:
        """The socket is gone."""
        self._total -= self._sizes.pop(socket, 0)
        self._shed.discard(socket)

    def total(self) -> int:
        """Bytes queued across the relay now (exact)."""
        self._refresh()
        return self._total

    def _refresh(self) -> None:
        self._sizes = {socket: socket.buffered() for socket in self._sizes}
        self._total = sum(self._sizes.values())

    def _rebalance(self) -> None:
        self._refresh()
        if self._total <= self.limit:
            return
        largest = sorted(self._sizes, key=self._sizes.__getitem__, reverse=True)
        # First shed live sockets, largest first, until the live ones fit; a shed socket keeps
        # its bytes while its DISCONNECTED drains, so then drop shed ones until all fit.
        live = self._total - sum(self._sizes[socket] for socket in self._shed)
        for socket in largest:
            if live <= self.limit:
                break
            if socket not in self._shed:
                socket.shed()
                live -= self._sizes[socket]
        for socket in largest:
            if self._total <= self.limit:
                break
            if socket in self._shed:
                socket.abort()
                self.forget(socket)
