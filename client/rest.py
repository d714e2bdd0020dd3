"""REST calls: channel history pages, single messages and versions, presence, publishing.

Bodies are msgpack or JSON (the client's format); errors become AblyError with the relay's code.
History pages follow the Link header the way ably-js does: the `next` link's query is re-sent to
the same resource path.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, quote

import aiohttp

from channel_relay.client.auth import Auth
from channel_relay.client.errors import AblyError, error_from_info, is_token_error
from channel_relay.client.message import Message, PresenceMessage
from channel_relay.protocol.codec import Format, decode_body, encode_body

__all__ = ["PaginatedResult", "Rest"]

T = TypeVar("T")
_LINK = re.compile(r'\s*<\./[\w]+\?(.*)>;\s*rel="(\w+)"\s*$')
_MIME = {"json": "application/json", "msgpack": "application/x-msgpack"}


class PaginatedResult(Generic[T]):
    """One page of a paginated resource: `items`, `has_next()`, `await next()` (None at end)."""

    def __init__(
        self,
        rest: Rest,
        path: str,
        items: list[T],
        links: dict[str, dict[str, str]],
        convert: Callable[[dict[str, Any]], T],
    ) -> None:
        self.items = items
        self._rest, self._path, self._links, self._convert = rest, path, links, convert

    def has_next(self) -> bool:
        return "next" in self._links

    def is_last(self) -> bool:
        return not self.has_next()

    async def next(self) -> PaginatedResult[T] | None:
        """The next page, or None when this is the last one."""
        query = self._links.get("next")
        if query is None:
            return None
        return await self._rest.paginated(self._path, query, self._convert)


class Rest:
    """The REST side of a client, sharing its Auth and format. `base_url` is http://host:port."""

    def __init__(self, base_url: str, auth: Auth, fmt: Format = "msgpack") -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.format: Format = fmt
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def request(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        body: Any = None,
    ) -> tuple[Any, dict[str, dict[str, str]]]:
        """One authenticated request -> (decoded body, links). A token error (4014x) renews
        the token once and retries, as the SDKs do."""
        for attempt in range(2):
            try:
                return await self._request_once(method, path, params, body)
            except AblyError as error:
                if attempt or not is_token_error(error) or not self.auth.renewable:
                    raise
                await self.auth.authorize(force=True)
        raise AssertionError("unreachable")

    async def _request_once(
        self, method: str, path: str, params: dict[str, str] | None, body: Any
    ) -> tuple[Any, dict[str, dict[str, str]]]:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        if self.auth.uses_token and self.auth.token is None:
            await self.auth.authorize()
        mime = _MIME[self.format]
        headers = {"Accept": mime, "X-Ably-Version": "6", **self.auth.rest_headers()}
        data = None
        if body is not None:
            headers["Content-Type"] = mime
            data = encode_body(body, self.format)
        url = self.base_url + path
        async with self._http.request(
            method, url, params=params, data=data, headers=headers
        ) as resp:
            raw = await resp.read()
            if resp.status >= 300:
                raise _error(resp, raw, self.format)
            value = decode_body(raw, self.format) if raw and resp.status != 204 else None
            return value, _links(resp.headers.getall("Link", []))

    async def paginated(
        self, path: str, params: dict[str, str], convert: Callable[[dict[str, Any]], T]
    ) -> PaginatedResult[T]:
        body, links = await self.request("GET", path, params)
        items = [convert(item) for item in (body or []) if isinstance(item, dict)]
        return PaginatedResult(self, path, items, links, convert)

    # Channels

    async def history(
        self,
        channel: str,
        *,
        limit: int | None = None,
        direction: str | None = None,
        start: int | None = None,
        end: int | None = None,
        from_serial: str | None = None,
    ) -> PaginatedResult[Message]:
        """GET /channels/{name}/messages: newest first unless direction="forwards".
        `from_serial` bounds the history at an attach point (ably-js's untilAttach)."""
        params = _params(
            limit=limit, direction=direction, start=start, end=end, from_serial=from_serial
        )
        return await self.paginated(_channel_path(channel, "messages"), params, Message.from_wire)

    async def publish(self, channel: str, messages: list[Message]) -> list[str]:
        """POST /channels/{name}/messages; returns the serials."""
        body, _ = await self.request(
            "POST", _channel_path(channel, "messages"), body=[m.to_wire() for m in messages]
        )
        return list((body or {}).get("serials") or [])

    async def get_message(self, channel: str, serial: str) -> Message:
        """GET /channels/{name}/messages/{serial}: the latest version, aggregated."""
        body, _ = await self.request("GET", _channel_path(channel, "messages", serial))
        return Message.from_wire(body)

    async def get_message_versions(
        self, channel: str, serial: str, *, limit: int | None = None
    ) -> PaginatedResult[Message]:
        """GET /channels/{name}/messages/{serial}/versions."""
        path = _channel_path(channel, "messages", serial, "versions")
        return await self.paginated(path, _params(limit=limit), Message.from_wire)

    async def presence_get(self, channel: str) -> PaginatedResult[PresenceMessage]:
        return await self.paginated(
            _channel_path(channel, "presence"), {}, PresenceMessage.from_wire
        )

    async def presence_history(
        self, channel: str, *, limit: int | None = None, direction: str | None = None
    ) -> PaginatedResult[PresenceMessage]:
        return await self.paginated(
            _channel_path(channel, "presence", "history"),
            _params(limit=limit, direction=direction),
            PresenceMessage.from_wire,
        )

    async def time(self) -> int:
        body, _ = await self.request("GET", "/time")
        return int(body[0])


def _channel_path(channel: str, *rest: str) -> str:
    parts = [quote(channel, safe="")] + [quote(p, safe="") for p in rest]
    return "/channels/" + "/".join(parts)


def _params(**values: Any) -> dict[str, str]:
    return {k: str(v) for k, v in values.items() if v is not None}


def _links(headers: list[str]) -> dict[str, dict[str, str]]:
    links: dict[str, dict[str, str]] = {}
    for header in headers:
        for part in header.split(","):
            match = _LINK.match(part)
            if match:
                links[match.group(2)] = dict(parse_qsl(match.group(1), keep_blank_values=True))
    return links


def _error(resp: aiohttp.ClientResponse, raw: bytes, fmt: Format) -> AblyError:
    content_type = resp.headers.get("Content-Type", "")
    try:
        body_fmt: Format = "msgpack" if "msgpack" in content_type else "json"
        body = decode_body(raw, body_fmt) if raw else None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            return error_from_info(body["error"])
    except AblyError:
        pass
    code = resp.headers.get("X-Ably-Errorcode")
    message = resp.headers.get("X-Ably-Errormessage") or f"HTTP {resp.status}"
    return AblyError(
        int(code) if code and code.isdigit() else resp.status * 100, resp.status, message
    )
