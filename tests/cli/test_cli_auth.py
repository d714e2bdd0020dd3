"""`relay token`, `relay apps ...`, `relay keys list`, how the commands find the relay and its
key, and how they fail."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

import pytest
from cli_support import RunCli

from channel_relay.client import AblyError, Message, Realtime
from channel_relay.server import Relay


async def test_token_is_accepted_and_limited_to_its_capability(cli: RunCli, relay: Relay) -> None:
    issued = await cli(
        "token", "--client-id", "bob", "--capability", '{"tok:*":["publish"]}', "--json"
    )
    assert issued.code == 0, issued.err
    details = json.loads(issued.out)
    assert details["clientId"] == "bob"

    url = f"http://127.0.0.1:{relay.port}"
    async with Realtime(token=details["token"], url=url) as client:
        assert client.client_id == "bob"
        assert await client.channels.get("tok:a").publish("m", "x")
        with pytest.raises(AblyError) as refused:
            await client.rest.publish("other", [Message(name="m", data="x")])
        assert refused.value.code == 40160


async def test_jwt_is_signed_with_the_key_and_accepted(cli: RunCli, relay: Relay) -> None:
    issued = await cli("token", "--jwt", "--client-id", "carol", "--ttl", "60")
    assert issued.code == 0, issued.err
    token = issued.out.strip()
    assert token.count(".") == 2
    assert "expires" in issued.err
    async with Realtime(token=token, url=f"http://127.0.0.1:{relay.port}") as client:
        assert client.client_id == "carol"


async def test_apps_are_created_listed_and_deleted_with_the_admin_key(cli: RunCli) -> None:
    created = await cli("apps", "create", "--json")
    assert created.code == 0, created.err
    app = json.loads(created.out)
    new_key = app["keys"][0]["keyStr"]
    published = await cli("channels", "publish", "a:1", "m", "x", env={"RELAY_KEY": new_key})
    assert published.code == 0, published.err

    listed = json.loads((await cli("apps", "list", "--json")).out)
    by_id = {a["appId"]: a for a in listed}
    assert by_id["app1"]["admin"] is True
    assert by_id[app["appId"]]["channels"] == 1

    keys = json.loads((await cli("keys", "list", "--app", app["appId"], "--json")).out)
    assert [k["key"] for k in keys] == [new_key]

    not_admin = await cli("apps", "list", env={"RELAY_KEY": new_key})
    assert not_admin.code == 1
    assert not_admin.err.strip().endswith("(error 40160)")
    assert len(not_admin.err.strip().splitlines()) == 1

    deleted = await cli("apps", "delete", app["appId"])
    assert deleted.code == 0, deleted.err
    gone = await cli("channels", "history", "a:1", env={"RELAY_KEY": new_key})
    assert gone.code == 1 and "40400" in gone.err
    own = await cli("apps", "delete", "app1")
    assert own.code == 1 and "40000" in own.err


async def test_commands_need_no_flags_next_to_the_database_of_relay_serve(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    serve = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "channel_relay", "serve", "--port", "0",
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert serve.stdout is not None
        async with asyncio.timeout(20):
            first = (await serve.stdout.readline()).decode()
        port = re.search(r":(\d+)", first.split("http")[1])
        assert port, first
        run = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "channel_relay", "channels", "publish", "c", "m", "x",
            cwd=tmp_path, env={**env, "RELAY_PORT": port.group(1)},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        async with asyncio.timeout(30):
            out, err = await run.communicate()
        assert run.returncode == 0, err.decode()
        assert b"published 1 message(s) to c" in out
    finally:
        serve.terminate()
        await serve.wait()


async def test_a_relay_that_is_not_running_is_one_line_and_exit_1(cli: RunCli) -> None:
    done = await cli("channels", "list", env={"RELAY_URL": "http://127.0.0.1:9"})
    assert done.code == 1
    assert done.err.startswith("relay: cannot reach the relay")
    assert len(done.err.strip().splitlines()) == 1


async def test_no_key_anywhere_says_where_one_comes_from(cli: RunCli, tmp_path: Path) -> None:
    done = await cli("channels", "list", env={"RELAY_KEY": "", "RELAY_DB": str(tmp_path / "x")})
    assert done.code == 1
    assert "no key: give --key or RELAY_KEY" in done.err
