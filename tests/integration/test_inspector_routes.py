"""The inspector's routes: the page is served to anyone (it holds no data), everything it shows
needs a key exactly as the REST API does, and a deployment can turn it off."""

from __future__ import annotations

import argparse
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from raw_client import b64

from channel_relay.config import Settings
from channel_relay.server import Relay
from channel_relay.settings_loader import add_arguments, load_settings

KEY = "app1.key1:secret1"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _get(http: aiohttp.ClientSession, url: str, auth: str | None = None) -> tuple[int, Any]:
    headers = {"Accept": "application/json"}
    if auth is not None:
        headers["Authorization"] = auth
    async with http.get(url, headers=headers) as response:
        body = await response.read()
        try:
            return response.status, json.loads(body)
        except ValueError:
            return response.status, body.decode()


def _basic(key: str) -> str:
    return "Basic " + b64(key.encode())


async def test_the_page_and_its_scripts_are_served_from_the_package(
    relay: Relay, http: aiohttp.ClientSession
) -> None:
    status, page = await _get(http, f"{relay.url}/inspect")
    assert status == 200
    assert "channel-relay inspector" in page
    for asset in ("inspector.js", "protocol.js", "messages.js", "aitransport.js", "inspector.css"):
        status, _ = await _get(http, f"{relay.url}/inspect/assets/{asset}")
        assert status == 200, asset


@pytest.mark.parametrize("route", ["/inspect/api/app", "/inspect/api/connections"])
async def test_inspector_data_needs_a_key_like_the_rest_api(
    relay: Relay, http: aiohttp.ClientSession, route: str
) -> None:
    rest = f"{relay.url}/channels/any/messages"
    for auth in (None, _basic("app1.key1:wrong"), _basic("app9.key1:secret1")):
        status, body = await _get(http, relay.url + route, auth)
        rest_status, rest_body = await _get(http, rest, auth)
        assert (status, body["error"]["code"]) == (rest_status, rest_body["error"]["code"])
        assert status == 401


async def test_the_app_route_names_the_keys_app_and_capability(
    relay: Relay, http: aiohttp.ClientSession
) -> None:
    status, app = await _get(http, f"{relay.url}/inspect/api/app", _basic(KEY))
    assert status == 200
    assert app["appId"] == "app1"
    assert app["keyName"] == "app1.key1"
    assert app["capability"] == {"*": ["*"]}
    assert app["channelEnumeration"] is True


async def test_connections_need_channel_metadata_on_every_channel(
    relay: Relay, http: aiohttp.ClientSession
) -> None:
    capability = json.dumps({"chat:*": ["subscribe", "channel-metadata"]})
    async with http.post(
        f"{relay.url}/keys/app1.key1/requestToken",
        json={"capability": capability},
        headers={"Authorization": _basic(KEY)},
    ) as response:
        token = (await response.json())["token"]
    bearer = "Bearer " + b64(token.encode())
    status, body = await _get(http, f"{relay.url}/inspect/api/connections", bearer)
    assert (status, body["error"]["code"]) == (401, 40160)
    status, app = await _get(http, f"{relay.url}/inspect/api/app", bearer)
    assert status == 200
    assert app["channelEnumeration"] is False


async def test_a_deployment_can_turn_the_inspector_off(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    relay = Relay(
        Settings(
            host="127.0.0.1",
            port=0,
            db_path=str(tmp_path / "relay.db"),
            keys=[KEY],
            inspector=False,
        )
    )
    await relay.start()
    try:
        for route in ("/inspect", "/inspect/assets/inspector.js", "/inspect/api/app"):
            status, body = await _get(http, relay.url + route, _basic(KEY))
            assert (status, body["error"]["code"]) == (404, 40400), route
        status, _ = await _get(http, f"{relay.url}/channels/any/messages", _basic(KEY))
        assert status == 200
    finally:
        await relay.stop()


def test_the_inspector_setting_comes_from_flag_variable_or_file(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    config = tmp_path / "relay.toml"
    config.write_text("[server]\ninspector = false\n")
    assert load_settings(parser.parse_args([]), {}).inspector is True
    assert load_settings(parser.parse_args(["--no-inspector"]), {}).inspector is False
    assert load_settings(parser.parse_args([]), {"RELAY_INSPECTOR": "0"}).inspector is False
    assert load_settings(parser.parse_args([]), {}, config=config).inspector is False
    flag_wins = parser.parse_args(["--inspector"])
    assert load_settings(flag_wins, {"RELAY_INSPECTOR": "0"}, config=config).inspector is True
