"""Channel enumeration (`GET /channels`): Ably's parameters in, one page of an app's channels
and the next page's link out.

The relay lists every channel it holds for the app (every channel with a log in the store), not
only the ones active right now as Ably does: a local relay's user wants to find the channel they
published to before a restart. `status.isActive` tells which have attachments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from channel_relay.channels.history import HistoryParams, link_header
from channel_relay.channels.occupancy import channel_status, idle_status
from channel_relay.channels.registry import ChannelRegistry
from channel_relay.protocol.errors import AblyError

__all__ = ["ChannelListParams", "ChannelPage", "read_channels"]


@dataclass(frozen=True, slots=True)
class ChannelListParams:
    limit: int = 100
    prefix: str = ""
    # by=id: names only; by=value (Ably's default): ChannelDetails with occupancy.
    by_id: bool = False
    # The last name of the previous page.
    cursor: str | None = None

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> ChannelListParams:
        """Read Ably's parameters (limit 1-1000, prefix, by); 40003 for a value Ably refuses."""
        limit = HistoryParams.parse({"limit": query.get("limit", "100")}).limit
        by = query.get("by", "value")
        if by not in ("value", "id"):
            raise AblyError.invalid_param("by must be value or id")
        return cls(limit, query.get("prefix", ""), by == "id", query.get("cursor") or None)

    def to_query(self) -> dict[str, str]:
        query = {"limit": str(self.limit), "by": "id" if self.by_id else "value"}
        if self.prefix:
            query["prefix"] = self.prefix
        if self.cursor is not None:
            query["cursor"] = self.cursor
        return query


@dataclass(frozen=True, slots=True)
class ChannelPage:
    items: list[Any]
    params: ChannelListParams
    next: ChannelListParams | None

    def links(self) -> str:
        """Link header: first, current and (when more remain) next pages."""
        pages = [
            ("first", replace(self.params, cursor=None).to_query()),
            ("current", self.params.to_query()),
        ]
        if self.next is not None:
            pages.append(("next", self.next.to_query()))
        return link_header("channels", pages)


async def read_channels(
    channels: ChannelRegistry, app_id: str, params: ChannelListParams
) -> ChannelPage:
    """One page of the app's channels in name order: names, or details (occupancy of the
    loaded ones; a channel that is not loaded has nobody attached)."""
    names = await channels.store.channel_names(
        app_id, params.prefix, params.cursor, params.limit + 1
    )
    next_params = None
    if len(names) > params.limit:
        names = names[: params.limit]
        next_params = replace(params, cursor=names[-1])
    if params.by_id:
        return ChannelPage(list(names), params, next_params)
    items = []
    for name in names:
        channel = channels.loaded(app_id, name)
        items.append(idle_status(name) if channel is None else channel_status(channel))
    return ChannelPage(items, params, next_params)
