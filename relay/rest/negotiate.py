"""Content negotiation and the Ably error envelope for REST responses."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from channel_relay.protocol.codec import Format, decode_body, encode_body
from channel_relay.protocol.errors import AblyError, error_body

__all__ = ["error_response", "read_body", "reply", "response_format"]

_CONTENT_TYPES: dict[Format, str] = {
    "json": "application/json",
    "msgpack": "application/x-msgpack",
}


def response_format(request: web.Request) -> Format:
    """msgpack when the client accepts it (ably-js in node, ably-python), otherwise JSON."""
    if request.query.get("format") == "msgpack":
        return "msgpack"
    return "msgpack" if "application/x-msgpack" in request.headers.get("Accept", "") else "json"


async def read_body(request: web.Request, max_size: int) -> Any:
    if request.content_length is not None and request.content_length > max_size:
        raise AblyError.too_large("Request body too large")
    body = await request.read()
    if len(body) > max_size:
        raise AblyError.too_large("Request body too large")
    fmt: Format = "msgpack" if "msgpack" in (request.content_type or "") else "json"
    return decode_body(body, fmt)


def reply(
    request: web.Request,
    value: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    fmt = response_format(request)
    # Exact content types: ably-js compares them literally and ably-python decodes by them.
    return web.Response(
        body=encode_body(value, fmt),
        status=status,
        headers={"Content-Type": _CONTENT_TYPES[fmt], **(headers or {})},
    )


def error_response(request: web.Request, error: AblyError) -> web.Response:
    return reply(
        request,
        error_body(error),
        status=error.status,
        headers={
            "X-Ably-Errorcode": str(error.code),
            "X-Ably-Errormessage": _header_safe(error.message),
        },
    )


def _header_safe(text: str) -> str:
    """Messages can quote client input (a channel name with a newline): keep headers one line."""
    return "".join(c if " " <= c <= "~" else "?" for c in text)
