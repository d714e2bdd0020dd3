"""The web inspector in a real browser: Debian's Chromium, headless, driven by Playwright, looking
at what the unmodified ably-js and @ably/ai-transport do on the relay.

Every check waits for the page to show something (Playwright's expect polls); nothing is timed.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from continuity_support import NodeProcess, StartProxy
from interop_support import RunNode, b64
from playwright.async_api import Browser, Page, async_playwright, expect

if TYPE_CHECKING:
    from channel_relay.server import Relay

CHROMIUM = Path("/usr/bin/chromium")
# Debian's Chromium, headless, offline: no sandbox (CI runs as root), no GPU, nothing fetched.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KEY = "app1.key1:secret1"
# How long the page may take to show something on a busy machine (ms).
SHOWN_WITHIN = 20_000


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if shutil.which(str(CHROMIUM)) is None:
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser, relay: Relay) -> Page:
    """The inspector opened with the app's key, its own connection up."""
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(SHOWN_WITHIN)
    await page.goto(f"{relay.url}/inspect#key={KEY}")
    await expect(page.locator("#connection")).to_have_attribute(
        "data-state", "connected", timeout=SHOWN_WITHIN
    )
    return page


async def open_channel(page: Page, name: str, tab: str = "live") -> None:
    await page.fill("#channel-name", name)
    await page.click("#open-form button")
    await expect(page.locator("#live-note")).to_contain_text("Attached", timeout=SHOWN_WITHIN)
    await page.click(f"[data-tab={tab}]")


async def post(relay: Relay, path: str, body: object) -> Any:
    """POST `body` with the app's key; the JSON answer, if any."""
    headers = {"Authorization": "Basic " + b64(KEY.encode())}
    async with (
        aiohttp.ClientSession() as session,
        session.post(relay.url + path, json=body, headers=headers) as response,
    ):
        assert response.status in (201, 204), await response.text()
        return await response.json() if response.status == 201 else None


async def publish(relay: Relay, channel: str, messages: list[dict[str, object]]) -> None:
    await post(relay, f"/channels/{channel}/messages", messages)


async def test_message_published_by_ably_js_appears_in_live_tail(
    page: Page, run_node: RunNode
) -> None:
    await open_channel(page, "inspect:tail")
    await run_node("inspector_publish.mjs", args={"channel": "inspect:tail"})
    live = page.locator("#live")
    greeting = live.locator("li[data-name=greeting]")
    await expect(greeting.locator("pre.data")).to_contain_text(
        '"hello": "world"', timeout=SHOWN_WITHIN
    )
    await expect(greeting.locator(".badge")).to_have_text("create")
    await expect(greeting.locator(".client")).to_have_text("publisher")
    binary = live.locator("li[data-name=bytes] pre.data")
    await expect(binary).to_contain_text("binary, 4 bytes")
    await expect(binary).to_contain_text("de ad be ef")
    await expect(live.locator("li[data-action=append] pre.data")).to_have_text(" upon a time")
    await expect(live.locator("li[data-action=update] pre.data")).to_have_text(
        "Once upon a time, edited"
    )
    deleted = live.locator("li[data-action=delete]")
    await expect(deleted).to_have_attribute("data-name", "doomed")
    await expect(deleted.locator(".badge").first).to_have_text("delete")


async def test_history_pages_back_through_older_messages(page: Page, relay: Relay) -> None:
    await publish(
        relay, "inspect:history", [{"name": f"m{i}", "data": {"n": i}} for i in range(30)]
    )
    await open_channel(page, "inspect:history", tab="history")
    rows = page.locator("#history li")
    await expect(rows).to_have_count(25, timeout=SHOWN_WITHIN)
    await expect(rows.first).to_have_attribute("data-name", "m29")
    await page.click("#older")
    await expect(rows).to_have_count(30, timeout=SHOWN_WITHIN)
    await expect(rows.last).to_have_attribute("data-name", "m0")
    await expect(page.locator("#older")).to_be_hidden()


async def test_presence_shows_both_devices(
    page: Page, relay: Relay, nodes: list[NodeProcess]
) -> None:
    await open_channel(page, "inspect:presence", tab="presence")
    node = await NodeProcess.start(
        "inspector_presence.mjs",
        port=relay.port,
        args={"channel": "inspect:presence", "gate": "inspect:gate"},
        deadline=60,
    )
    nodes.append(node)
    entered = await node.wait_event(lambda e: e.get("ev") == "entered", within=30)
    members = page.locator("#presence tr[data-client-id=alice]")
    await expect(members).to_have_count(2, timeout=SHOWN_WITHIN)
    for connection_id in entered["connectionIds"]:
        row = page.locator(f"#presence tr[data-connection-id='{connection_id}']")
        await expect(row).to_contain_text("alice")
    await expect(page.locator("#presence")).to_contain_text('"device": "phone"')
    await expect(page.locator("#presence")).to_contain_text('"device": "laptop"')
    # GET /channels lists the channel with its occupancy: the two devices and the inspector.
    listed = page.locator("#channels li[data-channel='inspect:presence'] .occupancy")
    await expect(listed).to_contain_text("3 conn", timeout=SHOWN_WITHIN)
    await expect(listed).to_contain_text("2 present")
    # The same two devices are among the app's connections.
    await page.click("#show-connections")
    for connection_id in entered["connectionIds"]:
        row = page.locator(f"#connections tr[data-connection-id='{connection_id}']")
        await expect(row).to_contain_text("alice", timeout=SHOWN_WITHIN)
        await expect(row).to_contain_text("inspect:presence")
    await publish(relay, "inspect:gate", [{"name": "go"}])
    await node.finish(within=30)


ANSWER = "The sky looks blue because air scatters blue light more than red light."


async def start_turn(relay: Relay, nodes: list[NodeProcess]) -> tuple[NodeProcess, dict[str, Any]]:
    """An AI Transport turn on ai:inspect, paused mid-stream: (node, its 'paused' event)."""
    node = await NodeProcess.start(
        "inspector_ai_stream.mjs",
        port=relay.port,
        args={
            "channel": "ai:inspect",
            "gate": "inspect:gate",
            "question": "Why is the sky blue?",
            "answer": ANSWER,
            "pauseAt": 4,
        },
        deadline=60,
    )
    nodes.append(node)
    return node, await node.wait_event(lambda e: e.get("ev") == "paused", within=30)


async def test_streamed_ai_turn_is_shown_as_it_streams(
    page: Page, relay: Relay, nodes: list[NodeProcess]
) -> None:
    await open_channel(page, "ai:inspect", tab="ai")
    node, paused = await start_turn(relay, nodes)
    run = page.locator(f".run[data-run-id='{paused['runId']}']")
    await expect(run).to_have_attribute("data-state", "streaming", timeout=SHOWN_WITHIN)
    await expect(run.locator(".answer")).to_have_text(paused["shown"], timeout=SHOWN_WITHIN)
    await expect(run).to_contain_text("owner alice")
    turn = page.locator(".turn", has=run)
    await expect(turn.locator(".input")).to_contain_text("Why is the sky blue?")

    await publish(relay, "inspect:gate", [{"name": "go"}])
    await expect(run).to_have_attribute("data-state", "complete", timeout=SHOWN_WITHIN)
    await expect(run.locator(".answer")).to_have_text(ANSWER)
    result = await node.finish(within=30)
    assert result["errors"] == []


async def test_a_turn_opened_mid_stream_carries_on_from_history(
    page: Page, relay: Relay, nodes: list[NodeProcess]
) -> None:
    """Opened after the turn began, the view reads the aggregated history up to its attach
    point, then applies the live appends that follow, counting none twice."""
    node, paused = await start_turn(relay, nodes)
    run = page.locator(f".run[data-run-id='{paused['runId']}']")
    await open_channel(page, "ai:inspect", tab="ai")
    await expect(run).to_have_attribute("data-state", "streaming")
    await expect(run.locator(".answer")).to_have_text(paused["shown"])
    await publish(relay, "inspect:gate", [{"name": "go"}])
    await expect(run).to_have_attribute("data-state", "complete")
    await expect(run.locator(".answer")).to_have_text(ANSWER)
    await node.finish(within=30)


async def test_the_admin_key_lists_every_app_and_opens_another(page: Page, relay: Relay) -> None:
    other = (await post(relay, "/admin/apps", {}))["appId"]
    apps = page.locator("#apps")
    await expect(apps.locator("li[data-app-id=app1]")).to_contain_text("admin")
    await apps.locator(f"li[data-app-id='{other}'] a").click()
    await expect(page.locator("#app-id")).to_have_text(other, timeout=SHOWN_WITHIN)
    await expect(apps.locator(f"li[data-app-id='{other}']")).to_have_class("current")
    await expect(page.locator("#connection")).to_have_attribute(
        "data-state", "connected", timeout=SHOWN_WITHIN
    )


async def test_recorded_push_notifications_are_listed(page: Page, relay: Relay) -> None:
    device = {
        "id": "phone-1",
        "platform": "android",
        "formFactor": "phone",
        "clientId": "alice",
        "push": {"recipient": {"transportType": "gcm", "registrationToken": "token-1"}},
    }
    await post(relay, "/push/deviceRegistrations", device)
    notification = {"title": "Hello", "body": "From the inspector test"}
    await post(
        relay,
        "/push/publish",
        {"recipient": {"deviceId": "phone-1"}, "notification": notification, "data": {"n": "1"}},
    )
    await page.click("#show-push")
    row = page.locator("#push tr[data-device-id=phone-1]")
    await expect(row).to_contain_text("From the inspector test", timeout=SHOWN_WITHIN)
    await expect(row).to_contain_text("alice")
    await expect(row).to_contain_text("gcm")


async def test_without_a_valid_key_the_page_shows_nothing_of_the_app(
    browser: Browser, relay: Relay
) -> None:
    page = await browser.new_page()
    page.set_default_timeout(SHOWN_WITHIN)
    await page.goto(f"{relay.url}/inspect")
    await expect(page.locator("#workspace")).to_be_hidden()
    await page.fill("#key", "app1.key1:wrong-secret")
    await page.click("#key-form button[type=submit]")
    await expect(page.locator("#key-error")).to_contain_text("40101")
    await expect(page.locator("#workspace")).to_be_hidden()
    await expect(page.locator("#connection")).to_have_attribute("data-state", "initialized")


async def test_the_live_tail_misses_nothing_across_a_dropped_connection(
    browser: Browser, relay: Relay, proxies: StartProxy
) -> None:
    """The page reconnects and re-attaches from the last channelSerial it saw: what was published
    while it was away is replayed, once."""
    proxy = await proxies(relay.port)
    page = await browser.new_page()
    page.set_default_timeout(SHOWN_WITHIN)
    await page.goto(f"http://127.0.0.1:{proxy.port}/inspect#key={KEY}")
    await open_channel(page, "inspect:drop")
    await publish(relay, "inspect:drop", [{"name": "before", "data": "1"}])
    rows = page.locator("#live li")
    await expect(rows).to_have_count(1)

    proxy.refuse = True
    assert proxy.drop() >= 1
    await expect(page.locator("#connection")).to_have_attribute("data-state", "disconnected")
    await publish(relay, "inspect:drop", [{"name": "while-away", "data": "2"}])
    proxy.refuse = False

    await expect(rows.first).to_have_attribute("data-name", "while-away")
    await publish(relay, "inspect:drop", [{"name": "after", "data": "3"}])
    await expect(rows).to_have_count(3)
    names = [await row.get_attribute("data-name") for row in await rows.all()]
    assert names == ["after", "while-away", "before"]


async def test_stats_count_what_was_published(page: Page, relay: Relay) -> None:
    await publish(relay, "inspect:stats", [{"name": "n", "data": str(i)} for i in range(3)])
    await page.click("#show-stats")
    inbound = page.locator("#stats tr td[data-entry='messages.inbound.all.messages.count']")
    # One REST publish of three messages counts in one minute, whichever row that is.
    await expect(inbound.filter(has_text=re.compile(r"^3$"))).to_have_count(1)
