"""The exceptions the client raises: each is an AblyError carrying Ably's code and HTTP status.

The wire's ErrorInfo, the relay's refusals and the client's own failures share one class,
`channel_relay.protocol.errors.AblyError`, so a caller tests `err.code` the way an Ably SDK user
would (40142 token expired, 93002 mutable messages not enabled, 80006 continuity lost, ...).
"""

from __future__ import annotations

from typing import Any

from channel_relay.protocol.errors import AblyError

__all__ = [
    "AblyError",
    "ChannelFailedError",
    "ConnectionFailedError",
    "ContinuityLostError",
    "error_from_info",
    "is_token_error",
]


class ConnectionFailedError(AblyError):
    """The connection cannot be used any more (FAILED or CLOSED); pending calls get this."""


class ChannelFailedError(AblyError):
    """The relay refused or failed a channel (a channel-scoped ERROR, a refused ATTACH)."""


class ContinuityLostError(AblyError):
    """Messages may have been missed: a re-attach came back without RESUMED, or a resume
    failed and the connection is new. Raised into subscribers' iterators and emitted as the
    `continuity_lost` event; history fills the gap."""


def error_from_info(info: Any, cls: type[AblyError] = AblyError) -> AblyError:
    """An AblyError (or `cls`) from a wire ErrorInfo dict; tolerant of missing fields."""
    if isinstance(info, AblyError):
        return info
    if not isinstance(info, dict):
        return cls(50000, 500, str(info) if info else "Unknown error")
    code = info.get("code")
    status = info.get("statusCode")
    code = int(code) if isinstance(code, int | float) else 50000
    if not isinstance(status, int | float):
        status = code // 100 if 10000 <= code < 60000 else 500
    return cls(code, int(status), str(info.get("message") or f"Error {code}"))


def is_token_error(error: AblyError | dict[str, Any] | None) -> bool:
    """Whether an error asks the client to renew its token (40140-40149)."""
    if error is None:
        return False
    code = error.code if isinstance(error, AblyError) else error.get("code")
    return isinstance(code, int) and 40140 <= code < 40150
