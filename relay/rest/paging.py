"""Offset paging for REST lists that are not message logs (push registrations, annotations):
`limit` (default 100, at most 1000) and the relay's own `cursor` (an offset), with Ably's
`first`, `current` and `next` Link relations."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from channel_relay.channels.history import link_header
from channel_relay.protocol.errors import AblyError

__all__ = ["OffsetPage"]

_DEFAULT_LIMIT = 100
_MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class OffsetPage:
    limit: int
    offset: int

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> OffsetPage:
        """40003 for a limit or cursor that is not a positive (or zero) integer."""
        try:
            limit = min(int(query.get("limit", _DEFAULT_LIMIT)), _MAX_LIMIT)
            offset = int(query.get("cursor", "0"))
        except ValueError as error:
            raise AblyError.invalid_param("limit and cursor must be integers") from error
        if limit < 1 or offset < 0:
            raise AblyError.invalid_param("limit must be positive and cursor not negative")
        return cls(limit, offset)

    def links(self, resource: str, query: Mapping[str, str], more: bool) -> str:
        """The Link header of this page of `resource`; `more` when a next page follows."""
        pages = [
            ("first", {**query, "cursor": "0"}),
            ("current", {**query, "cursor": str(self.offset)}),
        ]
        if more:
            pages.append(("next", {**query, "cursor": str(self.offset + self.limit)}))
        return link_header(resource, pages)
