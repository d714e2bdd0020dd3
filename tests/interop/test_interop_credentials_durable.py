"""Nonces and revocations live in the store: a revoked token stays revoked, and a TokenRequest
cannot be replayed, across a restart of the relay process (even one killed with SIGKILL right
after answering)."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import aiohttp
from continuity_support import KEY, RelayProcess, start_relay_process

from channel_relay.auth.keys import ApiKey
from channel_relay.auth.tokens import create_token_request

KEY_NAME = KEY.partition(":")[0]


async def _restart(processes: list[RelayProcess], db: Path) -> RelayProcess:
    """SIGKILL the running relay and start another on the same database."""
    if processes:
        processes[-1].kill()
        await processes[-1].proc.wait()
    processes.append(await start_relay_process(db))
    return processes[-1]


async def _call(
    relay: RelayProcess, method: str, path: str, auth: str, body: Any = None
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method,
            f"http://127.0.0.1:{relay.port}{path}",
            json=body,
            headers={"Authorization": auth},
        ) as response,
    ):
        return response.status, await response.json()


def _basic() -> str:
    return "Basic " + base64.b64encode(KEY.encode()).decode()


def _signed_request(client_id: str) -> dict[str, Any]:
    key = ApiKey.parse(KEY)
    now = int(time.time() * 1000)
    return create_token_request(key, now_ms=now, client_id=client_id).to_dict()


async def _bearer(relay: RelayProcess, request: dict[str, Any]) -> str:
    """The Authorization header of the token a signed TokenRequest is exchanged for."""
    status, token = await _call(relay, "POST", f"/keys/{KEY_NAME}/requestToken", "", request)
    assert status == 200, token
    return "Bearer " + base64.b64encode(token["token"].encode()).decode()


async def test_a_revoked_token_stays_revoked_after_the_relay_is_killed_and_restarted(
    tmp_path: Path, processes: list[RelayProcess]
) -> None:
    db = tmp_path / "relay.db"
    relay = await _restart(processes, db)
    request = _signed_request("mallory")
    bearer = await _bearer(relay, request)
    status, _ = await _call(relay, "GET", "/channels/c/messages", bearer)
    assert status == 200
    status, result = await _call(
        relay, "POST", f"/keys/{KEY_NAME}/revokeTokens", _basic(), {"targets": ["clientId:mallory"]}
    )
    assert (status, result["successCount"]) == (201, 1), result
    status, refused = await _call(relay, "GET", "/channels/c/messages", bearer)
    assert (status, refused["error"]["code"]) == (401, 40141)

    relay = await _restart(processes, db)
    status, refused = await _call(relay, "GET", "/channels/c/messages", bearer)
    assert (status, refused["error"]["code"]) == (401, 40141)
    # The same TokenRequest, replayed at the restarted relay: its nonce is still held.
    status, replayed = await _call(relay, "POST", f"/keys/{KEY_NAME}/requestToken", "", request)
    assert (status, replayed["error"]["code"]) == (401, 40105)
    # A bystander's fresh token works.
    bearer = await _bearer(relay, _signed_request("bob"))
    status, _ = await _call(relay, "GET", "/channels/c/messages", bearer)
    assert status == 200
