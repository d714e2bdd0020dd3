"""Channel serials: opaque to clients, ordered as strings, recognisable by the relay.

A serial is "<epoch>-<seq>" with both parts fixed width, so string order is channel order. The
epoch is minted when a channel's log is created (time first, so a recreated log sorts after the
old one); a serial whose epoch is not the channel's current one comes from a log the relay no
longer holds, and continuity from it cannot be promised.
"""

from __future__ import annotations

import secrets
import time

__all__ = ["NO_LOG_EPOCH", "format_serial", "new_epoch", "parse_serial"]

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
_SEQ_WIDTH = 16

# The epoch of a channel whose log does not exist yet (a log is created by its first write). It
# sorts before every minted epoch, so the serial an attach to an empty channel reports comes
# before every serial its log will hold, whichever node creates that log and whenever.
NO_LOG_EPOCH = "0" * 12


def _base36(n: int, width: int) -> str:
    out = []
    while n:
        n, r = divmod(n, 36)
        out.append(_DIGITS[r])
    return "".join(reversed(out)).rjust(width, "0")


def new_epoch() -> str:
    """A fresh epoch: creation time in ms (base 36) plus randomness, 12 characters."""
    return _base36(int(time.time() * 1000), 9) + _base36(secrets.randbelow(36**3), 3)


def format_serial(epoch: str, seq: int) -> str:
    # The width spelled out (_SEQ_WIDTH): a nested {_SEQ_WIDTH} builds the format spec on
    # every call, and this runs several times per publish and per append.
    return f"{epoch}-{seq:016d}"


def parse_serial(serial: str) -> tuple[str, int] | None:
    """(epoch, seq) of a serial this relay minted, or None for anything else."""
    epoch, sep, seq = serial.rpartition("-")
    # isascii: str.isdigit() also accepts "²" (which int() refuses) and non-ASCII digits.
    if not sep or len(epoch) != 12 or len(seq) != _SEQ_WIDTH:
        return None
    if not (seq.isascii() and seq.isdigit()):
        return None
    return epoch, int(seq)
