"""How a failed write reaches a client."""

from __future__ import annotations

from channel_relay.protocol.errors import AblyError

__all__ = ["store_error"]


def store_error(what: str, error: BaseException) -> AblyError:
    """The error to answer a write with: a refusal decided in the commit (an AblyError, such as
    40400 for a change to a message that does not exist) as it is, anything else as 50000
    saying the store failed."""
    if isinstance(error, AblyError):
        return error
    return AblyError.internal(f"{what} could not be stored: the store failed ({error})")
