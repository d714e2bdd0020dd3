"""The REST API's refusals and formats, against a real relay: every error is Ably's envelope with
the headers and exact Content-Type the SDKs parse, in the format the client asked for."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import msgpack
import pytest

from channel_relay.server import Relay

JSON = "application/json"
MSGPACK = "application/x-msgpack"


# The `relay` fixture's key (tests/conftest.py).
APP_KEY = "app1.key1:secret1"


def _basic(key: str = APP_KEY) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(key.encode()).decode()}


def _messages_url(relay: Relay, channel: str) -> str:
    # As ably-js builds it: encodeURIComponent of the channel name.
    return f"{relay.url}/channels/{quote(channel, safe='')}/messages"


async def _body(resp: aiohttp.ClientResponse) -> Any:
    raw = await resp.read()
    content_type = resp.headers.get("Content-Type")
    if content_type == MSGPACK:
        return msgpack.unpackb(raw, raw=False)
    assert content_type == JSON, f"unexpected Content-Type {content_type!r}"
    return await resp.json(content_type=None)


async def _expect_error(
    resp: aiohttp.ClientResponse, status: int, code: int, content_type: str = JSON
) -> dict[str, Any]:
    """Check the whole error contract; return the ErrorInfo."""
    # ably-js parses an error body only when Content-Type is exactly one of its two formats.
    assert resp.headers.get("Content-Type") == content_type
    assert resp.status == status, await resp.text()
    body = await _body(resp)
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "code", "statusCode", "href"}
    assert isinstance(error["message"], str) and error["message"]
    assert type(error["code"]) is int and type(error["statusCode"]) is int
    assert (error["code"], error["statusCode"]) == (code, status)
    assert error["href"].endswith(str(code))
    # The header fallback ably-js uses when it cannot parse the body.
    assert resp.headers["X-Ably-Errorcode"] == str(code)
    assert resp.headers["X-Ably-Errormessage"]
    assert "\n" not in resp.headers["X-Ably-Errormessage"]
    return error


async def _history(http: aiohttp.ClientSession, relay: Relay, channel: str) -> list[Any]:
    headers = {**_basic(), "Accept": JSON}
    async with http.get(_messages_url(relay, channel), headers=headers) as resp:
        assert resp.status == 200
        return await _body(resp)


# Time


async def test_time_needs_no_credentials_and_returns_one_timestamp(
    relay: Relay, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{relay.url}/time") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == JSON
        body = await _body(resp)
    assert isinstance(body, list) and len(body) == 1
    assert type(body[0]) is int and body[0] > 1_700_000_000_000


async def test_time_answers_in_msgpack_when_the_client_accepts_it(
    relay: Relay, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{relay.url}/time", headers={"Accept": MSGPACK}) as resp:
        assert resp.headers["Content-Type"] == MSGPACK
        (now,) = msgpack.unpackb(await resp.read())
    assert now > 1_700_000_000_000


# Authentication


async def test_a_wrong_secret_is_refused_with_40101(
    relay: Relay, http: aiohttp.ClientSession
) -> None:
    headers = _basic("app1.key1:not-the-secret")
    async with http.get(_messages_url(relay, "c"), headers=headers) as resp:
        await _expect_error(resp, 401, 40101)


@pytest.mark.parametrize(
    "authorization",
    ["Basic !!!not-base64!!!", "Basic " + base64.b64encode(b"no-colon-or-dot").decode()],
)
async def test_malformed_basic_credentials_are_refused_with_40101(
    relay: Relay, http: aiohttp.ClientSession, authorization: str
) -> None:
    headers = {"Authorization": authorization}
    async with http.post(_messages_url(relay, "c"), json=[{"data": "x"}], headers=headers) as r:
        await _expect_error(r, 401, 40101)


async def test_a_key_the_relay_does_not_know_is_refused_with_401(
    relay: Relay, http: aiohttp.ClientSession
) -> None:
    async with http.get(_messages_url(relay, "c"), headers=_basic("app9.key9:secret")) as resp:
        error = await _expect_error(resp, 401, 40400)
    assert "app9.key9" in error["message"]


async def test_no_credentials_is_refused_with_40101(
    relay: Relay, http: aiohttp.ClientSession
) -> None:
    async with http.post(_messages_url(relay, "c"), json=[{"data": "x"}]) as resp:
        await _expect_error(resp, 401, 40101)
    assert await _history(http, relay, "c") == []


async def test_auth_errors_come_in_msgpack_when_the_client_accepts_it(
    relay: Relay, http: aiohttp.ClientSession
) -> None:
    headers = {**_basic("app1.key1:wrong"), "Accept": MSGPACK}
    async with http.get(_messages_url(relay, "c"), headers=headers) as resp:
        await _expect_error(resp, 401, 40101, MSGPACK)


# Routes and channels


@pytest.mark.parametrize("path", ["/nope", "/channelz", "/keys", "/apps/x/y/z"])
async def test_unknown_routes_get_the_error_envelope_with_404(
    relay: Relay, http: aiohttp.ClientSession, path: str
) -> None:
    async with http.get(relay.url + path, headers=_basic()) as resp:
        await _expect_error(resp, 404, 40400)


async def test_a_wrong_method_on_a_known_path_is_404_like_ably(
    relay: Relay, http: aiohttp.ClientSession
) -> None:
    async with http.delete(f"{relay.url}/time") as resp:
        await _expect_error(resp, 404, 40400)


@pytest.mark.parametrize("channel", [":leading-colon", "[meta]x", "new\nline"], ids=repr)
async def test_an_invalid_channel_name_is_refused_with_40010(
    relay: Relay, http: aiohttp.ClientSession, channel: str
) -> None:
    url = _messages_url(relay, channel)
    async with http.post(url, json=[{"data": "x"}], headers=_basic()) as resp:
        await _expect_error(resp, 400, 40010)
    async with http.get(url, headers={**_basic(), "Accept": MSGPACK}) as resp:
        await _expect_error(resp, 400, 40010, MSGPACK)


@pytest.mark.parametrize("channel", ["x y/é", "a%41", "100%", "a+b", "频道:1"], ids=repr)
async def test_channel_names_arrive_exactly_as_the_client_named_them(
    relay: Relay, http: aiohttp.ClientSession, channel: str
) -> None:
    url = _messages_url(relay, channel)
    async with http.post(url, json=[{"data": "x"}], headers=_basic()) as resp:
        assert resp.status == 201
        assert (await _body(resp))["channel"] == channel
    assert [m["data"] for m in await _history(http, relay, channel)] == ["x"]


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=x", "direction=up"])
async def test_bad_history_parameters_are_refused_with_40003(
    relay: Relay, http: aiohttp.ClientSession, query: str
) -> None:
    async with http.get(f"{_messages_url(relay, 'c')}?{query}", headers=_basic()) as resp:
        await _expect_error(resp, 400, 40003)


async def test_a_foreign_from_serial_is_refused_with_40003_not_a_server_error(
    relay: Relay, http: aiohttp.ClientSession
) -> None:
    serial = quote("abcdefghijkl-" + "²" * 16)
    url = f"{_messages_url(relay, 'c')}?from_serial={serial}"
    async with http.get(url, headers=_basic()) as resp:
        await _expect_error(resp, 400, 40003)


# Publishing


async def test_publish_answers_201_with_channel_message_id_and_serials(
    relay: Relay, http: aiohttp.ClientSession
) -> None:
    body = [{"name": "a", "data": "1"}, {"name": "b", "data": "2"}]
    async with http.post(_messages_url(relay, "pub"), json=body, headers=_basic()) as resp:
        assert resp.status == 201
        assert resp.headers["Content-Type"] == JSON
        result = await _body(resp)
    assert result["channel"] == "pub"
    assert isinstance(result["messageId"], str) and result["messageId"]
    assert len(result["serials"]) == 2 and result["serials"] == sorted(result["serials"])
    history = await _history(http, relay, "pub")
    assert [m["serial"] for m in reversed(history)] == result["serials"]


async def test_idempotent_publish_returns_the_same_serials_twice_and_stores_once(
    relay: Relay, http: aiohttp.ClientSession
) -> None:
    # What ably-js sends by default: one random base per publish, ":index" per message.
    body = [{"id": "WH82sR49RgWA:0", "data": "a"}, {"id": "WH82sR49RgWA:1", "data": "b"}]
    replies = []
    for _ in range(2):
        async with http.post(_messages_url(relay, "idem"), json=body, headers=_basic()) as resp:
            assert resp.status == 201
            replies.append(await _body(resp))
    assert replies[0]["serials"] == replies[1]["serials"]
    assert replies[0]["messageId"] == replies[1]["messageId"] == "WH82sR49RgWA"
    history = await _history(http, relay, "idem")
    assert [(m["id"], m["data"]) for m in history] == [
        ("WH82sR49RgWA:1", "b"),
        ("WH82sR49RgWA:0", "a"),
    ]


async def test_a_msgpack_publish_gets_a_msgpack_reply_and_keeps_binary_data(
    relay: Relay, http: aiohttp.ClientSession
) -> None:
    headers = {**_basic(), "Content-Type": MSGPACK, "Accept": MSGPACK}
    body = msgpack.packb([{"data": b"\x00\xff"}], use_bin_type=True)
    async with http.post(_messages_url(relay, "bin"), data=body, headers=headers) as resp:
        assert resp.status == 201
        assert resp.headers["Content-Type"] == MSGPACK
        assert (await _body(resp))["serials"]
    async with http.get(_messages_url(relay, "bin"), headers=headers) as resp:
        assert resp.headers["Content-Type"] == MSGPACK
        (message,) = await _body(resp)
    assert message["data"] == b"\x00\xff"
    assert "encoding" not in message
    history = await _history(http, relay, "bin")  # and to a JSON reader, as base64
    assert (history[0]["data"], history[0]["encoding"]) == ("AP8=", "base64")


async def test_a_message_over_max_message_size_is_refused_with_40009(
    relay: Relay, http: aiohttp.ClientSession
) -> None:
    limit = relay.settings.max_message_size
    body = [{"data": "x" * (limit + 1)}]
    async with http.post(_messages_url(relay, "big"), json=body, headers=_basic()) as resp:
        await _expect_error(resp, 413, 40009)
    assert await _history(http, relay, "big") == []


async def test_a_body_over_the_frame_limit_is_refused_with_40009(
    relay: Relay, http: aiohttp.ClientSession
) -> None:
    body = b'[{"data":"' + b"x" * relay.settings.max_frame_size + b'"}]'
    headers = {**_basic(), "Content-Type": JSON}
    async with http.post(_messages_url(relay, "big"), data=body, headers=headers) as resp:
        await _expect_error(resp, 413, 40009)


async def test_a_chunked_body_over_the_frame_limit_is_refused_with_40009(
    relay: Relay, http: aiohttp.ClientSession
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'[{"data":"'
        for _ in range(relay.settings.max_frame_size // 65536 + 1):
            yield b"x" * 65536
        yield b'"}]'

    headers = {**_basic(), "Content-Type": JSON}
    async with http.post(_messages_url(relay, "big"), data=chunks(), headers=headers) as resp:
        await _expect_error(resp, 413, 40009)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", 40001),
        (b"[" * 100_000, 40001),
        (b"[]", 40013),
        (b'[{"data": 5}]', 40013),
        (b'[{"name": 5}]', 40016),
        (b'[{"data": "x", "extras": "no"}]', 40032),
        (b'[{"data": "not base64!", "encoding": "base64"}]', 40013),
    ],
    ids=["malformed", "nested", "empty", "number-data", "number-name", "extras", "base64"],
)
async def test_bad_publish_bodies_are_refused_with_the_matching_code(
    relay: Relay, http: aiohttp.ClientSession, body: bytes, code: int
) -> None:
    headers = {**_basic(), "Content-Type": JSON}
    async with http.post(_messages_url(relay, "bad"), data=body, headers=headers) as resp:
        await _expect_error(resp, 400, code)
    assert await _history(http, relay, "bad") == []


async def test_a_client_id_header_is_stamped_and_a_mismatch_is_refused_with_40012(
    relay: Relay, http: aiohttp.ClientSession
) -> None:
    headers = {**_basic(), "X-Ably-ClientId": base64.b64encode(b"alice").decode()}
    url = _messages_url(relay, "who")
    async with http.post(url, json=[{"data": "x"}], headers=headers) as resp:
        assert resp.status == 201
    async with http.post(url, json=[{"data": "y", "clientId": "bob"}], headers=headers) as resp:
        await _expect_error(resp, 400, 40012)
    assert [m["clientId"] for m in await _history(http, relay, "who")] == ["alice"]
