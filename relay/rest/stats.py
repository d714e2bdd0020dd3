"""GET /stats: an app's stats by minute, hour, day or month, paged as Ably pages them: the
sandbox's fixtures and what the relay counted itself (channel_relay.usage), summed."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

from aiohttp import web

from channel_relay.auth.authenticator import Authenticator
from channel_relay.protocol.errors import AblyError
from channel_relay.rest.negotiate import reply
from channel_relay.stats import SCHEMA, StatsQuery, format_interval, roll_up
from channel_relay.store.base import Store
from channel_relay.usage import LiveStats, merged

__all__ = ["StatsApi"]


class StatsApi:
    def __init__(self, store: Store, live: LiveStats, authenticator: Authenticator) -> None:
        self.store = store
        self.live = live
        self.auth = authenticator

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/stats", self.stats)]

    async def stats(self, request: web.Request) -> web.Response:
        identity = self.auth.request_headers(
            request.headers.get("Authorization"),
            request.headers.get("X-Ably-ClientId"),
            request.query.get("key"),
        )
        if not identity.capability.allows_app_wide("stats"):
            raise AblyError.forbidden("Stats are not permitted by this capability")
        query = StatsQuery.parse(request.query)
        first, last = query.span()
        fixtures = await self.store.stats(identity.app_id, first, last)
        counted = await self.live.minutes(identity.app_id, first, last)
        minutes = merged(((s, json.loads(e)) for s, e in fixtures), counted)
        intervals = roll_up(minutes, query.unit)
        page, more = query.page(intervals)
        now = int(time.time() * 1000)
        items = []
        for start, entries in page:
            item = {
                "intervalId": format_interval(start, query.unit),
                "unit": query.unit,
                "schema": SCHEMA,
                "appId": identity.app_id,
                "entries": entries,
            }
            if query.in_progress(start, now):
                item["inProgress"] = format_interval(now, "minute")
            items.append(item)
        links = [f'<./stats?{urlencode(query.params())}>; rel="first"']
        links.append(f'<./stats?{urlencode(query.params())}>; rel="current"')
        if more and page:
            links.append(f'<./stats?{urlencode(query.after(page[-1][0]))}>; rel="next"')
        return reply(request, items, headers={"Link": ", ".join(links)})
