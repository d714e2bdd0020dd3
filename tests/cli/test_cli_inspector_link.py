"""`relay serve` names the inspector's address; with the generated key of local development the
link opens the page with that key, and a configured key's secret stays out of it. (The
cli_live fixture ends each relay.)"""

from __future__ import annotations

import aiohttp
from cli_support import Live, StartCli

SERVE = ("serve", "--memory", "--host", "127.0.0.1", "--port", "0")


async def _banner(live: Live) -> dict[str, str]:
    lines: dict[str, str] = {}
    while "ably-js" not in lines:
        name, _, value = (await live.line()).strip().partition(": ")
        lines[name] = value
    return lines


async def test_the_banner_links_the_inspector_with_the_generated_key(cli_live: StartCli) -> None:
    live = await cli_live(*SERVE)
    banner = await _banner(live)
    page, _, fragment = banner["inspector"].partition("#")
    assert fragment == f"key={banner['key']}"
    async with aiohttp.ClientSession() as session, session.get(page) as response:
        assert response.status == 200
        assert "channel-relay inspector" in await response.text()


async def test_a_configured_key_stays_out_of_the_inspector_link(cli_live: StartCli) -> None:
    live = await cli_live(*SERVE, "--key", "app7.key1:configured-secret")
    banner = await _banner(live)
    assert banner["inspector"].endswith("/inspect")


async def test_no_inspector_line_when_it_is_off(cli_live: StartCli) -> None:
    live = await cli_live(*SERVE, "--no-inspector")
    assert "inspector" not in await _banner(live)
