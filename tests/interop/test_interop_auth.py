"""Auth and capabilities through the unmodified ably-js: every token flow an app uses works, every
refusal carries the code and status an Ably SDK user handles, and tokens renew without losing
messages.

JWTs are made here with pyjwt, as an app's auth server would; TokenRequests and TokenDetails come
from ably-js itself or from a tiny authUrl server in the test's own event loop. Where ably-js
hides the relay's answer (it renews on any 4014x, and refuses revokeTokens with a token before
sending), the relay's REST answer is also checked with the exact headers ably-js sends.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt as pyjwt
import pytest
from aiohttp import web
from interop_support import RunNode

from channel_relay.auth import revocation
from channel_relay.auth.capability import Capability
from channel_relay.auth.keys import ApiKey
from channel_relay.auth.tokens import create_token_request
from channel_relay.server import Relay

KEY = ApiKey.parse("app1.key1:secret1")
LIMITED = "app1.limited:secret2"
ALL_OPS = {"*": ["*"]}

# The test keys' secrets are short; pyjwt warns about that on every encode and decode.
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

# What the "limited" key (and every token made from it) may do, channel by channel.
LIMITED_CAPABILITY: dict[str, list[str]] = {
    "open": ["publish", "subscribe", "history", "presence"],
    "ro:*": ["subscribe", "history"],
    "nohist": ["publish", "subscribe"],
    "mut:own": [
        "publish",
        "subscribe",
        "history",
        "message-update-own",
        "message-delete-own",
    ],
    "mut:any": [
        "publish",
        "subscribe",
        "history",
        "message-update-any",
        "message-delete-any",
    ],
}


def make_jwt(
    *,
    capability: dict[str, list[str]] | None = None,
    client_id: str | None = None,
    ttl: float = 60.0,
    iat: float | None = None,
    key: ApiKey = KEY,
) -> str:
    """An Ably JWT as an app's auth server signs it: HS256 with the key secret, kid = key name."""
    issued = time.time() if iat is None else iat
    claims: dict[str, Any] = {
        "iat": int(issued),
        "exp": int(issued + ttl),
        "x-ably-capability": json.dumps(capability or ALL_OPS),
    }
    if client_id is not None:
        claims["x-ably-clientId"] = client_id
    return pyjwt.encode(claims, key.secret, algorithm="HS256", headers={"kid": key.name})


def bearer(token: str) -> str:
    """The Authorization header ably-js sends for token auth: Bearer base64(token)."""
    return "Bearer " + base64.b64encode(token.encode()).decode()


def basic(key: str) -> str:
    return "Basic " + base64.b64encode(key.encode()).decode()


async def rest_call(
    relay: Relay,
    method: str,
    path: str,
    *,
    authorization: str | None = None,
    body: Any = None,
) -> tuple[int, Any]:
    """One REST request as ably-js makes it (JSON); returns (status, decoded body)."""
    headers = {"Accept": "application/json", "X-Ably-Version": "6"}
    if authorization is not None:
        headers["Authorization"] = authorization
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, relay.url + path, headers=headers, json=body) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


def assert_error(status_body: tuple[int, Any], code: int, status: int) -> None:
    got_status, body = status_body
    assert got_status == status, status_body
    assert isinstance(body, dict) and body.get("error", {}).get("code") == code, status_body
    assert body["error"]["statusCode"] == status, status_body


def assert_refusal(error: dict[str, Any] | None, code: int, status: int) -> None:
    """An ErrorInfo reported by a script: exactly this code and statusCode."""
    assert error is not None, "expected a refusal, got success"
    assert "resolved" not in error, f"expected {code}, but it succeeded: {error}"
    assert (error["code"], error["statusCode"]) == (code, status), error


def add_limited_key(relay: Relay) -> None:
    relay.apps.add([ApiKey.parse(LIMITED, Capability.parse(LIMITED_CAPABILITY))])


# An app's auth server: the authUrl ably-js calls for each new token.


@dataclass
class AuthServer:
    """An authUrl endpoint on 127.0.0.1 answering with a JWT, a TokenRequest or TokenDetails."""

    relay: Relay
    url: str = ""
    hits: dict[str, int] = field(default_factory=dict)

    async def jwt(self, request: web.Request) -> web.Response:
        self._hit("jwt")
        token = make_jwt(client_id="url-jwt")
        return web.Response(text=token, content_type="text/plain")

    async def token_request(self, request: web.Request) -> web.Response:
        self._hit("token-request")
        signed = create_token_request(KEY, now_ms=_now_ms(), client_id="url-tr")
        return web.json_response(signed.to_dict())

    async def token_details(self, request: web.Request) -> web.Response:
        """Exchanges a signed TokenRequest at the relay, as a server using the REST API would."""
        self._hit("token-details")
        signed = create_token_request(KEY, now_ms=_now_ms(), client_id="url-td")
        status, details = await rest_call(
            self.relay, "POST", f"/keys/{KEY.name}/requestToken", body=signed.to_dict()
        )
        assert status == 200, details
        return web.json_response(details)

    def _hit(self, name: str) -> None:
        self.hits[name] = self.hits.get(name, 0) + 1


def _now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
async def auth_server(relay: Relay) -> AsyncIterator[AuthServer]:
    server = AuthServer(relay)
    app = web.Application()
    app.router.add_get("/jwt", server.jwt)
    app.router.add_get("/token-request", server.token_request)
    app.router.add_get("/token-details", server.token_details)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sockets = site._server.sockets if site._server is not None else []  # type: ignore[union-attr]
    server.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
    try:
        yield server
    finally:
        await runner.cleanup()


# Token flows


FLOW_CLIENT_IDS = {
    "jwt": "py-jwt",
    "tokenRequest": "tr-user",
    "tokenDetails": "td-user",
    "authUrl-jwt": "url-jwt",
    "authUrl-token-request": "url-tr",
    "authUrl-token-details": "url-td",
}


@pytest.mark.parametrize("flow", list(FLOW_CLIENT_IDS))
async def test_every_token_flow_connects_publishes_and_reads_with_the_tokens_client_id(
    run_node: RunNode, auth_server: AuthServer, fmt: str, flow: str
) -> None:
    client_id = FLOW_CLIENT_IDS[flow]
    args: dict[str, Any] = {"flow": flow, "channel": f"flow-{flow}", "clientId": client_id}
    if flow == "jwt":
        args["jwt"] = make_jwt(client_id=client_id)
    if flow.startswith("authUrl"):
        args["flow"] = "authUrl"
        args["authUrl"] = f"{auth_server.url}/{flow.removeprefix('authUrl-')}"
    out = await run_node("auth_flows.mjs", format=fmt, args=args)

    # The identity comes from the token; the relay stamps it on everything published.
    assert out["authClientId"] == client_id, out
    assert out["received"]["clientId"] == client_id, out
    assert out["received"]["connectionId"] == out["connectionId"]
    assert out["serials"] and out["serials"][0]
    assert out["history"] == [
        {"name": "realtime", "clientId": client_id},
        {"name": "rest", "clientId": client_id},
    ]
    if flow == "jwt":
        assert out["tokenDetails"]["token"] == args["jwt"]
        assert out["callbackCalls"] == 2  # one per client: realtime and REST
    elif flow.startswith("authUrl"):
        assert auth_server.hits == {flow.removeprefix("authUrl-"): 2}, auth_server.hits
    else:
        # A TokenRequest was exchanged at the relay: TokenDetails with the token's clientId.
        assert out["tokenDetails"]["clientId"] == client_id
        assert out["callbackCalls"] == 2


# Refusals


async def test_operations_outside_the_capability_are_refused_with_the_codes_ably_js_expects(
    relay: Relay, run_node: RunNode, fmt: str
) -> None:
    add_limited_key(relay)
    out = await run_node(
        "auth_denials.mjs",
        format=fmt,
        args={"limitedKey": LIMITED, "aliceJwt": make_jwt(client_id="alice")},
    )
    assert out["clientId"] == "alice"
    # Publish without the op: the publish is NACKed, nothing else changes.
    assert_refusal(out["publishDenied"], 40160, 401)
    # Attach/subscribe outside the capability: that channel FAILED with 40160.
    assert_refusal(out["attachDenied"], 40160, 401)
    assert out["attachState"] == {"state": "failed", "reason": 40160}
    assert_refusal(out["subscribeDenied"], 40160, 401)
    assert out["subscribeState"] == "failed"
    # History without the op, over REST and through realtime untilAttach.
    assert_refusal(out["restHistoryDenied"], 40160, 401)
    assert_refusal(out["untilAttachDenied"], 40160, 401)
    assert "resolved" in out["restHistoryAllowed"], out["restHistoryAllowed"]
    assert "resolved" in out["untilAttachAllowed"], out["untilAttachAllowed"]
    # The verified clientId is stamped; claiming another is 40012/400.
    assert out["stamped"] == "alice"
    assert "resolved" in out["ownClientId"], out["ownClientId"]
    assert_refusal(out["spoofed"], 40012, 400)
    assert out["afterSpoof"] == "attached"
    # Requested modes are granted only as far as the capability goes.
    assert out["modes"] == ["subscribe"]
    assert sorted(out["openModes"]) == ["presence", "presence_subscribe", "publish", "subscribe"]
    # message-update/delete-own: only alice's own messages; -any: anyone's.
    own, any_ = out["change"]["mut:own"], out["change"]["mut:any"]
    assert_refusal(own["updateOthers"], 40160, 401)
    assert_refusal(own["deleteOthers"], 40160, 401)
    assert "resolved" in own["updateOwn"] and "resolved" in own["deleteOwn"], own
    for name, result in any_.items():
        assert "resolved" in result, (name, result)
    # The connect clientId must match the token's: the connection FAILS with 40102.
    assert out["mismatch"]["code"] == 40102, out["mismatch"]
    assert out["mismatch"]["statusCode"] == 401, out["mismatch"]
    assert out["mismatchState"] == "failed"
    # None of it disturbed the connection or the channels that were allowed.
    assert out["connectionState"] == "connected"
    assert out["openState"] == "attached"


async def test_revoked_tokens_stop_working_at_once_and_revoking_needs_the_key(
    relay: Relay, run_node: RunNode, fmt: str
) -> None:
    out = await run_node(
        "auth_revoke.mjs", format=fmt, args={"channel": "revoke", "keyName": KEY.name}
    )
    assert out["result"] == {
        "successCount": 1,
        "failureCount": 0,
        "targets": ["clientId:revokee"],
    }
    # The live connection is told at once, with the token error that makes ably-js renew.
    assert out["disconnected"]["reason"]["code"] == 40141, out["disconnected"]
    assert out["disconnected"]["reason"]["statusCode"] == 401, out["disconnected"]
    assert out["renewedWith"] and out["callbackCalls"] == 2, out
    assert out["sameConnection"], out["victimStates"]
    assert out["channelState"] == "attached"
    # Only tokens matching the target are affected.
    assert out["bystanderStates"] == ["connecting", "connected"], out["bystanderStates"]
    # REST with the revoked token: 40141 from the relay (ably-js, unable to renew a literal,
    # surfaces 40171).
    assert_error(
        await rest_call(
            relay, "GET", "/channels/revoke/messages", authorization=bearer(out["revokedToken"])
        ),
        40141,
        401,
    )
    assert_refusal(out["literal"], 40171, 403)
    # revokeTokens with a token instead of Basic: 40162 from ably-js and from the relay alike.
    assert_refusal(out["sdkRefusal"], 40162, 401)
    assert out["relayRefusal"] == {"statusCode": 401, "errorCode": 40162, "success": False}


async def test_a_revocation_with_reauth_margin_asks_clients_to_renew_and_drops_the_rest_when_due(
    relay: Relay, run_node: RunNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    margin_ms = 2000
    monkeypatch.setattr(revocation, "REAUTH_MARGIN_MS", margin_ms)
    out = await run_node("auth_revoke_margin.mjs", args={"marginMs": margin_ms})
    applies_at = out["appliesAt"][0]
    assert out["appliesAt"] == [applies_at, applies_at]
    assert applies_at - out["revokedAt"] == pytest.approx(margin_ms, abs=500)
    # The client that renewed when told to (its second token) is untouched by the revocation.
    assert out["renewerCalls"] == 2, out
    assert "disconnected" not in out["renewerStates"], out["renewerStates"]
    assert out["renewerState"] == "connected" and out["sameConnection"]
    # The one that could not renew is dropped when the revocation comes into force.
    assert out["disconnected"]["reason"]["code"] == 40141, out["disconnected"]
    assert applies_at - 50 <= out["droppedAt"] <= applies_at + 1000, out


# Renewal


async def test_a_subscriber_on_expiring_tokens_gets_every_message_exactly_once_in_order(
    run_node: RunNode,
) -> None:
    count = 70

    async def stream(fmt: str) -> dict[str, Any]:
        args = {"channel": f"expiry-{fmt}", "ttl": 3000, "count": count, "interval": 100}
        return await run_node("auth_expiry_stream.mjs", format=fmt, args=args, deadline=40)

    # Both formats at once: each stream lasts two token lifetimes.
    for out in await asyncio.gather(stream("msgpack"), stream("json")):
        assert out["data"] == list(range(count)), out["data"]
        assert len(set(out["ids"])) == count
        # Renewed at least twice: each expiry is DISCONNECTED 40142, then a resume.
        expiries = [s for s in out["states"] if s == ["disconnected", 40142]]
        assert len(expiries) >= 2, out["states"]
        assert out["tokenRequests"] == len(expiries) + 1, out
        assert out["connectionIds"] and len(out["connectionIds"]) == 1, out
        assert out["channelState"] == "attached"


async def test_reauth_to_a_narrower_capability_fails_only_the_channels_no_longer_granted(
    run_node: RunNode, fmt: str
) -> None:
    out = await run_node(
        "auth_reauth.mjs", format=fmt, args={"keep": "reauth:keep", "drop": "reauth:drop"}
    )
    assert out["capability"] == {"reauth:keep": ["*"]}
    assert out["tokenRequests"] == 2
    # Same connection throughout: in-band AUTH, a new CONNECTED, no disconnection.
    assert out["sameConnection"]
    assert "disconnected" not in out["states"], out["states"]
    assert out["failed"]["reason"]["code"] == 40160, out["failed"]
    assert out["failed"]["reason"]["statusCode"] == 401, out["failed"]
    assert out["keepState"] == "attached"
    assert out["after"] == "still flowing"
    assert out["ownPublish"] == {"resolved": True}


async def test_reauth_to_a_wider_capability_lets_an_attached_channel_publish(
    run_node: RunNode, fmt: str
) -> None:
    out = await run_node("auth_reauth_upgrade.mjs", format=fmt, args={"channel": "upgrade"})
    assert out["before"]["code"] == 40160, out
    assert out["after"] == {"resolved": True}, out
    assert out["state"] == "attached"


# REST credentials


async def test_rest_and_connect_credential_errors_reach_ably_js_and_token_errors_renew(
    run_node: RunNode, fmt: str
) -> None:
    good = make_jwt(client_id="renewed")
    args = {
        "channel": "rest-auth",
        "wrongKey": f"{KEY.name}:not-the-secret",
        "goodJwt": good,
        "expiredJwt": make_jwt(client_id="renewed", iat=time.time() - 120, ttl=60),
        "malformedJwt": good[:-6] + ("AAAAAA" if not good.endswith("AAAAAA") else "BBBBBB"),
    }
    out = await run_node("auth_rest.mjs", format=fmt, args=args)
    # Bearer base64(token) from TokenDetails: publish and history work, clientId stamped.
    assert out["bearerPublish"] == {"resolved": True}
    assert out["bearerHistory"] == [["bearer", "bearer-user"]]
    # A wrong secret is 40101/401 (not a token error: ably-js does not retry it).
    assert_refusal(out["wrongSecret"], 40101, 401)
    # An expired JWT is 40142, a tampered one 40144: ably-js sees the code, renews and connects.
    for case, code in (("expired", 40142), ("malformed", 40144)):
        result = out[case]
        assert result["states"][:3] == [
            ["connecting", None, None],
            ["disconnected", code, 401],
            ["connecting", None, None],
        ], (case, result)
        assert result["states"][-1][0] == "connected", (case, result)
        assert result["calls"] == 2, (case, result)
    # requestToken: a stale timestamp is 40104, a nonce used twice 40105.
    assert_refusal(out["staleTimestamp"], 40104, 401)
    assert out["firstNonce"] == {"resolved": True}
    assert_refusal(out["replayedNonce"], 40105, 401)
    # Ably accepts a nonce again with another timestamp (ably-python's own suite relies on it).
    assert out["nonceAtAnotherTime"] == {"resolved": True}


async def test_relay_answers_rest_credentials_with_ablys_codes(relay: Relay) -> None:
    """What ably-js hides behind its own renewal or client-side checks, asked directly with the
    headers ably-js sends."""
    history = "/channels/rest-raw/messages"
    good = make_jwt(client_id="raw")
    # Bearer base64(token), as ably-js sends it; the raw token works too.
    for authorization in (bearer(good), f"Bearer {good}"):
        status, body = await rest_call(relay, "GET", history, authorization=authorization)
        assert (status, body) == (200, []), (authorization, body)
    assert_error(
        await rest_call(relay, "GET", history, authorization=basic(f"{KEY.name}:wrong")),
        40101,
        401,
    )
    expired = make_jwt(iat=time.time() - 120, ttl=60)
    assert_error(await rest_call(relay, "GET", history, authorization=bearer(expired)), 40142, 401)
    header, claims, signature = good.split(".")
    for malformed in (
        f"{header}.{claims}.{signature[:-4]}AAAA",  # tampered signature
        f"{header}.{claims}.",  # unsigned
        "not.a.jwt",
        make_jwt(key=ApiKey.parse("app1.key1:other-secret")),  # signed with another secret
    ):
        assert_error(
            await rest_call(relay, "GET", history, authorization=bearer(malformed)), 40144, 401
        )

    # requestToken with signed TokenRequests made here (the mac rule of the spec).
    path = f"/keys/{KEY.name}/requestToken"
    stale = create_token_request(KEY, now_ms=_now_ms() - 10 * 60 * 1000)
    assert_error(await rest_call(relay, "POST", path, body=stale.to_dict()), 40104, 401)
    fresh = create_token_request(KEY, now_ms=_now_ms(), client_id="raw")
    status, details = await rest_call(relay, "POST", path, body=fresh.to_dict())
    assert status == 200 and details["clientId"] == "raw", details
    assert_error(await rest_call(relay, "POST", path, body=fresh.to_dict()), 40105, 401)
    forged = {**fresh.to_dict(), "nonce": "another-nonce"}  # mac no longer matches
    assert_error(await rest_call(relay, "POST", path, body=forged), 40101, 401)

    # A token's capability is the key's at most; nothing in common is 40160.
    add_limited_key(relay)
    limited = ApiKey.parse(LIMITED, Capability.parse(LIMITED_CAPABILITY))
    narrowed = create_token_request(
        limited, now_ms=_now_ms(), capability='{"open":["publish","stats"],"secret":["*"]}'
    )
    status, details = await rest_call(
        relay, "POST", f"/keys/{limited.name}/requestToken", body=narrowed.to_dict()
    )
    assert status == 200, details
    assert json.loads(details["capability"]) == {"open": ["publish"]}
    outside = create_token_request(limited, now_ms=_now_ms(), capability='{"secret":["*"]}')
    assert_error(
        await rest_call(
            relay, "POST", f"/keys/{limited.name}/requestToken", body=outside.to_dict()
        ),
        40160,
        401,
    )

    # revokeTokens needs Basic auth with the key: a token is 40162.
    assert_error(
        await rest_call(
            relay,
            "POST",
            f"/keys/{KEY.name}/revokeTokens",
            authorization=bearer(good),
            body={"targets": ["clientId:raw"]},
        ),
        40162,
        401,
    )
