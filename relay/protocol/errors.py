"""Ably's ErrorInfo and the error codes the SDKs act on.

An SDK decides what to do from the code (renew a token, reattach, give up), so every refusal
the relay makes carries the code Ably's own service would send, with its HTTP status.
"""

from __future__ import annotations

from typing import Any

__all__ = ["AblyError", "error_body"]

HREF = "https://help.ably.io/error/"


class AblyError(Exception):
    """A failure that reaches a client as an Ably ErrorInfo {message, code, statusCode, href}."""

    def __init__(self, code: int, status: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "code": self.code,
            "statusCode": self.status,
            "href": f"{HREF}{self.code}",
        }

    def __repr__(self) -> str:
        return f"AblyError({self.code}, {self.status}, {self.message!r})"

    # Named constructors for the codes the relay sends; one place keeps code and status together.

    @classmethod
    def bad_request(cls, message: str) -> AblyError:
        return cls(40000, 400, message)

    @classmethod
    def invalid_param(cls, message: str) -> AblyError:
        return cls(40003, 400, message)

    @classmethod
    def too_large(cls, message: str) -> AblyError:
        return cls(40009, 413, message)

    @classmethod
    def invalid_channel_name(cls, message: str) -> AblyError:
        return cls(40010, 400, message)

    @classmethod
    def invalid_client_id(cls, message: str) -> AblyError:
        return cls(40012, 400, message)

    @classmethod
    def invalid_message(cls, message: str) -> AblyError:
        return cls(40013, 400, message)

    @classmethod
    def unauthorized(cls, message: str) -> AblyError:
        return cls(40101, 401, message)

    @classmethod
    def no_credentials(cls, message: str) -> AblyError:
        return cls(40106, 401, message)

    @classmethod
    def forbidden(cls, message: str) -> AblyError:
        return cls(40160, 401, message)

    @classmethod
    def not_found(cls, message: str) -> AblyError:
        return cls(40400, 404, message)

    @classmethod
    def internal(cls, message: str) -> AblyError:
        return cls(50000, 500, message)


def error_body(error: AblyError) -> dict[str, Any]:
    """The REST error envelope: {"error": ErrorInfo}."""
    return {"error": error.to_dict()}
