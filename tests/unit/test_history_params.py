"""History parameters as the SDKs send them, and the Link header they follow to the next page.

ably-js splits the Link header on ',', needs each part to be `<./messages?QUERY>; rel="NAME"`,
and re-GETs the original path with QUERY decoded by decodeURIComponent (which leaves '+' alone).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

import pytest

from channel_relay.channels.channel import Channel
from channel_relay.channels.history import MAX_LIMIT, HistoryPage, HistoryParams, read_page
from channel_relay.channels.registry import ChannelRegistry
from channel_relay.channels.rules import ChannelRules
from channel_relay.protocol.errors import AblyError
from channel_relay.protocol.serials import format_serial, new_epoch
from channel_relay.store.base import Publish, PublishResult
from channel_relay.store.sqlite import SqliteStore

LINK_PART = re.compile(r'^\s*<(.+)>;\s*rel="(\w+)"$')
LINK_URL = re.compile(r"^\./(\w+)\?(.*)$")


def _refused(query: dict[str, str]) -> AblyError:
    with pytest.raises(AblyError) as info:
        HistoryParams.parse(query)
    return info.value


def _links(header: str) -> dict[str, dict[str, str]]:
    """rel -> query parameters, parsed the way ably-js does (and asserting its format)."""
    out: dict[str, dict[str, str]] = {}
    for part in header.split(","):
        match = LINK_PART.match(part)
        assert match, f"ably-js cannot parse link part {part!r}"
        url, rel = match.groups()
        target = LINK_URL.match(url)
        assert target, f"ably-js cannot follow {url!r}"
        assert target.group(1) == "messages"
        query = target.group(2)
        assert "+" not in query and " " not in query, query
        out[rel] = {unquote(k): unquote(v) for k, v in (p.split("=", 1) for p in query.split("&"))}
    return out


# Parsing


def test_defaults_are_100_newest_first_unbounded() -> None:
    params = HistoryParams.parse({})
    assert params == HistoryParams(limit=100, forwards=False)
    assert params.start is params.end is params.until_serial is params.cursor is None


def test_empty_values_count_as_absent() -> None:
    assert HistoryParams.parse({"limit": "", "start": "", "end": ""}) == HistoryParams()


@pytest.mark.parametrize("limit", ["1", "50", str(MAX_LIMIT)])
def test_limits_from_1_to_1000_are_accepted(limit: str) -> None:
    assert HistoryParams.parse({"limit": limit}).limit == int(limit)


@pytest.mark.parametrize("limit", ["0", "-1", "1001", "ten", "1.5", "1e3"])
def test_limits_outside_1_to_1000_or_not_integers_are_refused_with_40003(limit: str) -> None:
    error = _refused({"limit": limit})
    assert (error.code, error.status) == (40003, 400)


def test_direction_forwards_and_backwards() -> None:
    assert HistoryParams.parse({"direction": "forwards"}).forwards is True
    assert HistoryParams.parse({"direction": "backwards"}).forwards is False


@pytest.mark.parametrize("direction", ["sideways", "FORWARDS", "forward"])
def test_an_unknown_direction_is_refused_with_40003(direction: str) -> None:
    assert _refused({"direction": direction}).code == 40003


def test_start_and_end_bound_by_time() -> None:
    params = HistoryParams.parse({"start": "1000", "end": "2000"})
    assert (params.start, params.end) == (1000, 2000)
    assert HistoryParams.parse({"start": "5", "end": "5"}).start == 5


def test_start_after_end_is_refused_with_40003() -> None:
    assert _refused({"start": "2000", "end": "1000"}).code == 40003


@pytest.mark.parametrize("key", ["start", "end"])
def test_non_integer_times_are_refused_with_40003(key: str) -> None:
    assert _refused({key: "yesterday"}).code == 40003


@pytest.mark.parametrize("key", ["from_serial", "fromSerial"])
def test_from_serial_accepts_a_serial_the_relay_minted(key: str) -> None:
    serial = format_serial(new_epoch(), 42)
    assert HistoryParams.parse({key: serial}).until_serial == serial


@pytest.mark.parametrize("serial", ["nope", "01726585978590-001@abcdef:001", "abcdefghijkl-12"])
def test_from_serial_that_is_not_a_relay_serial_is_refused_with_40003(serial: str) -> None:
    assert _refused({"from_serial": serial}).code == 40003


# The Link header


def test_link_header_has_first_current_and_next_in_the_form_ably_js_follows() -> None:
    params = HistoryParams(limit=2, forwards=True, start=10, end=20)
    page = HistoryPage(
        [], params, HistoryParams(limit=2, forwards=True, start=10, end=20, cursor=7)
    )
    links = _links(page.links("messages"))
    assert list(links) == ["first", "current", "next"]
    base = {"limit": "2", "direction": "forwards", "start": "10", "end": "20"}
    assert links["first"] == base
    assert links["current"] == base
    assert links["next"] == {**base, "cursor": "7"}


def test_the_last_page_has_no_next_link() -> None:
    page = HistoryPage([], HistoryParams(limit=5), None)
    links = _links(page.links("messages"))
    assert list(links) == ["first", "current"]


def test_first_link_drops_the_cursor_and_current_keeps_it() -> None:
    params = HistoryParams(limit=3, cursor=9)
    links = _links(HistoryPage([], params, None).links("messages"))
    assert "cursor" not in links["first"]
    assert links["current"]["cursor"] == "9"


def test_link_queries_encode_spaces_as_percent_20_and_commas_as_percent_2c() -> None:
    # decodeURIComponent does not turn '+' into a space, and the header is split on ','.
    params = HistoryParams(limit=1, until_serial="a b,c+d")
    header = HistoryPage([], params, replace(params, cursor=3)).links("messages")
    assert "a%20b%2Cc%2Bd" in header
    assert _links(header)["next"]["from_serial"] == "a b,c+d"


def test_a_next_link_parses_back_to_the_params_it_came_from() -> None:
    serial = format_serial(new_epoch(), 80)
    nxt = HistoryParams(limit=10, start=1, end=99, until_serial=serial, cursor=55)
    header = HistoryPage([], HistoryParams(limit=10), nxt).links("messages")
    query = header.split("<./messages?")[-1].split(">")[0]
    assert HistoryParams.parse(dict(parse_qsl(query))) == nxt


# Pages of a real channel log (a SQLite file, no server)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(str(tmp_path / "history.db"))
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def _channel_with(store: SqliteStore, count: int) -> Channel:
    log = await store.channel("app", "paged")
    stored = [{"data": f"m{seq}", "timestamp": 1000 + seq} for seq in range(1, count + 1)]
    done: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    def committed(_: PublishResult | None, error: BaseException | None) -> None:
        done.set_result(error)

    store.submit(Publish(log.channel_id, log.epoch, stored, [None] * count, committed))
    assert await done is None
    # A registry made now loads the channel from the store, with the log just written.
    return await ChannelRegistry(store, lambda _app, _name: ChannelRules()).get("app", "paged")


async def _all_pages(channel: Channel, query: dict[str, str]) -> list[list[Any]]:
    pages: list[list[Any]] = []
    params: HistoryParams | None = HistoryParams.parse(query)
    while params is not None:
        page = await read_page(channel, params)
        pages.append([m["data"] for m in page.messages])
        links = _links(page.links("messages"))
        assert ("next" in links) == (page.next is not None)
        params = HistoryParams.parse(links["next"]) if "next" in links else None
        assert len(pages) < 20
    return pages


async def test_backwards_pages_are_newest_first_and_the_last_page_has_no_next(
    store: SqliteStore,
) -> None:
    channel = await _channel_with(store, 5)
    pages = await _all_pages(channel, {"limit": "2"})
    assert pages == [["m5", "m4"], ["m3", "m2"], ["m1"]]


async def test_forwards_pages_are_oldest_first(store: SqliteStore) -> None:
    channel = await _channel_with(store, 5)
    pages = await _all_pages(channel, {"limit": "2", "direction": "forwards"})
    assert pages == [["m1", "m2"], ["m3", "m4"], ["m5"]]


async def test_a_history_that_fills_its_last_page_exactly_has_no_empty_extra_page(
    store: SqliteStore,
) -> None:
    channel = await _channel_with(store, 4)
    assert await _all_pages(channel, {"limit": "2"}) == [["m4", "m3"], ["m2", "m1"]]
    assert await _all_pages(channel, {"limit": "4"}) == [["m4", "m3", "m2", "m1"]]


async def test_an_empty_channel_has_one_empty_page(store: SqliteStore) -> None:
    channel = await _channel_with(store, 0)
    assert await _all_pages(channel, {}) == [[]]


async def test_from_serial_pages_backwards_from_that_message(store: SqliteStore) -> None:
    channel = await _channel_with(store, 6)
    serial = format_serial(channel.log.epoch, 4)
    pages = await _all_pages(channel, {"limit": "3", "from_serial": serial})
    assert pages == [["m4", "m3", "m2"], ["m1"]]


async def test_from_serial_of_another_epoch_bounds_out_everything(store: SqliteStore) -> None:
    channel = await _channel_with(store, 3)
    foreign = format_serial("zzzzzzzzzzzz", 2)
    assert await _all_pages(channel, {"from_serial": foreign}) == [[]]


async def test_time_bounds_select_messages_by_timestamp(store: SqliteStore) -> None:
    channel = await _channel_with(store, 6)  # timestamps 1001..1006
    pages = await _all_pages(channel, {"start": "1002", "end": "1004", "limit": "2"})
    assert pages == [["m4", "m3"], ["m2"]]
