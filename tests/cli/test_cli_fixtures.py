"""Fixture files: `relay export` and `relay import` keep every serial, version and presence
event; `relay serve --import/--export-on-exit` load and save them as the Firebase emulator
does; a bad file is one line and exit 1."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from cli_support import RunCli

from channel_relay.client import Realtime
from channel_relay.config import Settings
from channel_relay.server import Relay

KEY = "app1.key1:secret1"


async def _fill(relay: Relay) -> None:
    """Messages (text, JSON, binary), an update and an append, and presence events."""
    async with Realtime(KEY, url=f"http://127.0.0.1:{relay.port}", client_id="ann") as client:
        chat = client.channels.get("chat:1")
        await chat.attach()
        serials = await chat.publish("t", "hello")
        await chat.publish("j", {"k": [1, 2]})
        await chat.publish("b", b"\x00\x01\xffbinary")
        await chat.update_message(serials[0], data="hello, edited")
        await chat.append_message(serials[0], "!")
        await chat.presence.enter("here")
        await chat.presence.update("still here")
        await chat.presence.leave()
        await client.channels.get("other:2").publish("x", "y")


def _source(relay: Relay) -> list[str]:
    """The arguments that name `relay`'s store for relay export: its file or its database."""
    if relay.settings.store is not None:
        return ["--store", relay.settings.store]
    assert relay.settings.db_path is not None
    return ["--db", relay.settings.db_path]


async def _snapshot(port: int, channel: str) -> dict[str, Any]:
    """What a client reads of a channel: history, the first message's versions, presence."""
    async with Realtime(KEY, url=f"http://127.0.0.1:{port}") as client:
        rest = client.rest
        history = (await rest.history(channel, direction="forwards")).items
        versions = (await rest.get_message_versions(channel, history[0].serial)).items
        presence = (await rest.presence_history(channel, direction="forwards")).items
    return {
        "history": [(m.serial, m.name, m.data, m.action, m.version) for m in history],
        "versions": [(m.version_serial, m.action, m.data) for m in versions],
        "presence": [(p.action, p.client_id, p.data, p.timestamp) for p in presence],
    }


async def test_export_then_import_keeps_serials_versions_and_presence(
    cli: RunCli, relay: Relay, tmp_path: Path
) -> None:
    await _fill(relay)
    before = await _snapshot(relay.port, "chat:1")
    assert len(before["history"]) == 3 and len(before["versions"]) == 3
    made = json.loads((await cli("apps", "create", "--json")).out)

    fixture = tmp_path / "fixture.jsonl"
    exported = await cli("export", str(fixture), *_source(relay), "--channel", "chat:*", "--keys")
    assert exported.code == 0, exported.err
    lines = [json.loads(line) for line in fixture.read_text().splitlines()]
    assert lines[0]["format"] == "channel-relay-fixture" and lines[0]["version"] == 1
    assert [e["name"] for e in lines if e.get("type") == "channel"] == ["chat:1"]
    # Keys kept in the database travel with --keys (app1's key is a flag of this relay).
    assert [e["appId"] for e in lines if e.get("type") == "app"] == [made["appId"]]

    copy = tmp_path / "copy.db"
    imported = await cli("import", str(fixture), "--db", str(copy))
    assert imported.code == 0, imported.err
    assert "1 channel(s), 3 message(s), 3 version(s), 3 presence event(s)" in imported.err

    restored = Relay(Settings(host="127.0.0.1", port=0, db_path=str(copy), keys=[KEY]))
    await restored.start()
    try:
        assert await _snapshot(restored.port, "chat:1") == before
        async with Realtime(KEY, url=f"http://127.0.0.1:{restored.port}") as client:
            serials = await client.channels.get("chat:1").publish("next", "after import")
        assert serials[0].endswith("-0000000000000006")
        new_key = made["keys"][0]["keyStr"]
        async with Realtime(new_key, url=f"http://127.0.0.1:{restored.port}") as client:
            assert await client.rest.time()
    finally:
        await restored.stop()


async def test_serve_imports_at_start_and_exports_on_exit(
    cli: RunCli, relay: Relay, tmp_path: Path
) -> None:
    await _fill(relay)
    before = await _snapshot(relay.port, "chat:1")
    fixture = tmp_path / "in.jsonl"
    assert (await cli("export", str(fixture), *_source(relay))).code == 0
    saved = tmp_path / "out.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    args = ["--memory", "--port", "0", "--key", KEY, "--import", str(fixture)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "channel_relay", "serve", *args, "--export-on-exit", str(saved),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            first = (await proc.stdout.readline()).decode()
            assert first.startswith("imported 2 channel(s)"), first
            listening = (await proc.stdout.readline()).decode()
        port = int(listening.rsplit(":", 1)[1])
        assert await _snapshot(port, "chat:1") == before
    except BaseException:
        # A failed check must not leave the relay running after the test.
        proc.kill()
        await proc.wait()
        raise
    proc.terminate()
    async with asyncio.timeout(30):
        out, _ = await proc.communicate()
    assert proc.returncode == 0
    assert "exported 2 channel(s)" in out.decode()
    original = [json.loads(line) for line in fixture.read_text().splitlines()[1:]]
    again = [json.loads(line) for line in saved.read_text().splitlines()[1:]]
    assert [e for e in again if e["type"] != "app"] == original


async def test_a_bad_fixture_is_one_line_naming_the_line(cli: RunCli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"format": "channel-relay-fixture", "version": 1}\n{"type": "message"}\n')
    done = await cli("import", str(bad), "--db", str(tmp_path / "new.db"))
    assert done.code == 1
    assert done.err.strip() == f"relay: {bad}: line 2: a message line before any channel line"
