"""What an ATTACH asks for: its channel modes, the params the relay answers with, its rewind."""

from __future__ import annotations

from typing import Any

from channel_relay.protocol.actions import DEFAULT_MODES, MODE_FLAGS, MODE_NAMES, Flag
from channel_relay.protocol.errors import AblyError
from channel_relay.protocol.validation import is_int

__all__ = ["attach_params", "requested_modes", "rewind_param"]

_ALL_MODES = Flag(0)
for _mode in MODE_FLAGS:
    _ALL_MODES |= _mode

# The channel params Ably recognises; others are dropped from the ATTACHED reply (ably-js's
# attachWithInvalidChannelParams expects `{nonexistent: 'foo'}` to come back as `{}`).
# `agent` is what @ably/ai-transport sends.
_KNOWN_PARAMS = frozenset({"rewind", "delta", "modes", "occupancy", "agent"})


def attach_params(message: dict[str, Any]) -> dict[str, Any]:
    """The ATTACH's params that Ably recognises (an empty dict when it has none)."""
    params = message.get("params")
    if not isinstance(params, dict):
        return {}
    return {k: v for k, v in params.items() if k in _KNOWN_PARAMS}


def requested_modes(message: dict[str, Any]) -> Flag:
    """The modes an ATTACH requests: `params.modes` ("presence,subscribe") wins over the mode
    flags; neither gives Ably's default set. 40000 for an unknown mode name."""
    params = attach_params(message)
    names = params.get("modes")
    if isinstance(names, str) and names.strip():
        modes = Flag(0)
        for name in names.split(","):
            mode = MODE_NAMES.get(name.strip().lower())
            if mode is None:
                raise AblyError.bad_request(f"Invalid channel mode {name.strip()!r}")
            modes |= mode
        return modes
    flags = message.get("flags")
    if is_int(flags) and flags > 0:
        requested = Flag(flags) & _ALL_MODES
        if requested:
            return requested
    return DEFAULT_MODES


def rewind_param(message: dict[str, Any]) -> str | None:
    """The `rewind` to apply, as text ("10", "30s"), or None.

    ably-js sends the param as given, so `{rewind: 1}` arrives as a number. A reattach
    (ATTACH_RESUME set) never rewinds: the SDK already has what the rewind would replay.
    """
    flags = message.get("flags")
    if is_int(flags) and flags & Flag.ATTACH_RESUME:
        return None
    rewind = attach_params(message).get("rewind")
    if is_int(rewind):
        return str(rewind)
    if isinstance(rewind, str) and rewind:
        return rewind
    return None
