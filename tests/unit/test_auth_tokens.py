"""Native Ably tokens: TokenRequest checks, issue, verify, nonce replay and revocation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from auth_support import in_force

from channel_relay.auth.capability import Capability
from channel_relay.auth.keys import ApiKey
from channel_relay.auth.revocation import REAUTH_MARGIN_MS, RevocationRegistry
from channel_relay.auth.tokens import (
    DEFAULT_TTL_MS,
    MAX_TTL_MS,
    TIMESTAMP_WINDOW_MS,
    TokenDetails,
    TokenRequest,
    create_token_request,
    issue_token,
    request_token,
    verify_token,
)
from channel_relay.protocol.errors import AblyError
from channel_relay.store.sqlite import SqliteStore

NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SECRET = "s3cr3t-0123456789-abcdefghijklmnopqrstuvwxyz"
KEY = ApiKey("appA", "keyA", SECRET, Capability.parse({"chat:*": ["*"], "news": ["subscribe"]}))
OTHER = ApiKey("appA", "keyB", "another-secret-0123456789-abcdefghijklmnop")
KEYS = {k.name: k for k in (KEY, OTHER)}


def lookup(name: str) -> ApiKey | None:
    return KEYS.get(name)


def refused(code: int, status: int) -> object:
    class Check:
        def __eq__(self, error: object) -> bool:
            return isinstance(error, AblyError) and (error.code, error.status) == (code, status)

    return Check()


async def exchange(store: SqliteStore, body: dict, *, now_ms: int = NOW) -> TokenDetails:
    return await request_token(body, lookup, now_ms=now_ms, nonces=store)


def signed(**fields: object) -> dict:
    return create_token_request(KEY, now_ms=NOW, **fields).to_dict()  # type: ignore[arg-type]


def test_mac_is_base64_hmac_sha256_of_the_newline_joined_fields_with_blanks_for_absent() -> None:
    request = create_token_request(KEY, now_ms=NOW, client_id="bob", nonce="n" * 16)
    text = f"appA.keyA\n\n\nbob\n{NOW}\n{'n' * 16}\n"
    expected = base64.b64encode(hmac.new(SECRET.encode(), text.encode(), hashlib.sha256).digest())
    assert request.signed_text() == text
    assert request.mac == expected.decode()


async def test_token_request_exchanges_for_token_details_with_defaults(store: SqliteStore) -> None:
    details = await exchange(store, signed())
    assert details.key_name == "appA.keyA"
    assert details.issued == NOW
    assert details.expires == NOW + DEFAULT_TTL_MS
    assert Capability.parse(details.capability) == KEY.capability
    assert details.client_id is None
    assert set(details.to_dict()) == {"token", "keyName", "issued", "expires", "capability"}


async def test_token_details_carry_requested_ttl_client_id_and_intersected_capability(
    store: SqliteStore,
) -> None:
    details = await exchange(
        store,
        signed(ttl=30_000, client_id="alice", capability='{"chat:lobby":["publish"],"x":["*"]}'),
    )
    assert details.expires == NOW + 30_000
    assert details.client_id == "alice"
    assert details.capability == '{"chat:lobby":["publish"]}'
    assert details.to_dict()["clientId"] == "alice"


async def test_mac_covers_the_capability_text_exactly_as_sent(store: SqliteStore) -> None:
    spaced = '{ "chat:*" : [ "subscribe" ] }'
    details = await exchange(store, signed(capability=spaced))
    assert details.capability == '{"chat:*":["subscribe"]}'


async def test_request_fields_may_arrive_as_strings_from_form_encoding(store: SqliteStore) -> None:
    body = signed(ttl=60_000)
    body["ttl"], body["timestamp"] = str(body["ttl"]), str(body["timestamp"])
    assert (await exchange(store, body)).expires == NOW + 60_000


async def test_wildcard_client_id_token_is_issued(store: SqliteStore) -> None:
    assert (await exchange(store, signed(client_id="*"))).client_id == "*"


@pytest.mark.parametrize("ttl", [0, -1, MAX_TTL_MS + 1])
async def test_ttl_outside_one_ms_to_24_hours_is_refused_with_40003(
    ttl: int, store: SqliteStore
) -> None:
    with pytest.raises(AblyError) as info:
        await exchange(store, signed(ttl=ttl))
    assert info.value == refused(40003, 400)


async def test_ttl_of_exactly_24_hours_is_granted(store: SqliteStore) -> None:
    assert (await exchange(store, signed(ttl=MAX_TTL_MS))).expires == NOW + MAX_TTL_MS


@pytest.mark.parametrize("skew", [TIMESTAMP_WINDOW_MS + 1, -TIMESTAMP_WINDOW_MS - 1])
async def test_timestamp_outside_the_window_is_refused_with_40104(
    skew: int, store: SqliteStore
) -> None:
    with pytest.raises(AblyError) as info:
        await exchange(store, signed(), now_ms=NOW + skew)
    assert info.value == refused(40104, 401)


@pytest.mark.parametrize("skew", [TIMESTAMP_WINDOW_MS, -TIMESTAMP_WINDOW_MS])
async def test_timestamp_at_the_edge_of_the_window_is_accepted(
    skew: int, store: SqliteStore
) -> None:
    assert (await exchange(store, signed(), now_ms=NOW + skew)).issued == NOW + skew


async def test_reused_nonce_is_refused_with_40105(store: SqliteStore) -> None:
    body = signed()
    await exchange(store, body)
    with pytest.raises(AblyError) as info:
        await exchange(store, body, now_ms=NOW + 1)
    assert info.value == refused(40105, 401)


async def test_same_nonce_under_another_key_is_not_a_replay(store: SqliteStore) -> None:
    await exchange(store, signed(nonce="shared-nonce-0123"))
    other = create_token_request(OTHER, now_ms=NOW, nonce="shared-nonce-0123").to_dict()
    assert (await exchange(store, other)).key_name == "appA.keyB"


async def test_a_nonce_is_forgotten_once_its_timestamp_leaves_the_window(
    store: SqliteStore,
) -> None:
    body = signed()
    await exchange(store, body)
    # Replayed after the window: refused by its timestamp, and its nonce row is gone.
    with pytest.raises(AblyError) as info:
        await exchange(store, body, now_ms=NOW + TIMESTAMP_WINDOW_MS + 1)
    assert info.value == refused(40104, 401)
    claimed = f"{body['nonce']}@{body['timestamp']}"
    assert await store.claim_nonce("appA.keyA", claimed, NOW, NOW + TIMESTAMP_WINDOW_MS + 1)


async def test_a_nonce_reused_with_another_timestamp_is_not_a_replay(store: SqliteStore) -> None:
    await exchange(store, signed(nonce="1234567890123456"))
    again = create_token_request(KEY, now_ms=NOW + 5, nonce="1234567890123456").to_dict()
    assert (await exchange(store, again, now_ms=NOW + 5)).issued == NOW + 5


async def test_refused_mac_does_not_consume_the_nonce(store: SqliteStore) -> None:
    body = signed()
    forged = dict(body, mac=base64.b64encode(b"x" * 32).decode())
    with pytest.raises(AblyError):
        await exchange(store, forged)
    assert (await exchange(store, body)).key_name == "appA.keyA"


async def test_unknown_key_name_is_refused_with_40400_status_401(store: SqliteStore) -> None:
    body = dict(signed(), keyName="appA.nokey")
    with pytest.raises(AblyError) as info:
        await exchange(store, body)
    assert info.value == refused(40400, 401)


async def test_key_name_in_path_must_match_the_request(store: SqliteStore) -> None:
    with pytest.raises(AblyError) as info:
        await request_token(signed(), lookup, now_ms=NOW, nonces=store, key_name="appA.keyB")
    assert info.value == refused(40101, 401)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"keyName": "appA.keyA", "timestamp": NOW, "nonce": "n" * 16},
        {"keyName": "appA.keyA", "timestamp": "soon", "nonce": "n" * 16, "mac": "m"},
        {"keyName": "appA.keyA", "timestamp": NOW, "nonce": "n" * 16, "mac": "m", "ttl": True},
        {"keyName": "appA.keyA", "timestamp": NOW, "nonce": 5, "mac": "m"},
        {"keyName": "appA.keyA", "timestamp": NOW, "nonce": "n", "mac": "m", "capability": {}},
    ],
)
async def test_malformed_token_request_is_refused_with_40000(
    body: dict, store: SqliteStore
) -> None:
    with pytest.raises(AblyError) as info:
        await exchange(store, body)
    assert info.value == refused(40000, 400)


async def test_invalid_requested_capability_is_refused_with_40000(store: SqliteStore) -> None:
    with pytest.raises(AblyError) as info:
        await exchange(store, signed(capability='{"chat:*":["publish_"]}'))
    assert info.value == refused(40000, 400)


async def test_capability_outside_the_keys_is_refused_with_40160(store: SqliteStore) -> None:
    with pytest.raises(AblyError) as info:
        await exchange(store, signed(capability='{"private":["publish"]}'))
    assert info.value == refused(40160, 401)


def test_empty_client_id_is_refused_with_40012() -> None:
    with pytest.raises(AblyError) as info:
        issue_token(KEY, now_ms=NOW, client_id="")
    assert info.value == refused(40012, 400)


async def test_issued_token_verifies_on_any_node_that_knows_the_key(store: SqliteStore) -> None:
    details = await exchange(store, signed(client_id="alice", capability='{"chat:a":["publish"]}'))
    identity = verify_token(details.token, lookup, now_ms=NOW + 1)
    assert identity.app_id == "appA"
    assert identity.key_name == "appA.keyA"
    assert identity.client_id == "alice"
    assert identity.expires == details.expires
    assert identity.issued == NOW
    assert identity.method == "token"
    assert identity.capability.allows("chat:a", "publish")
    assert not identity.capability.allows("chat:b", "publish")


def test_native_token_has_four_dot_separated_parts_unlike_a_jwt() -> None:
    token = issue_token(KEY, now_ms=NOW).token
    assert token.startswith("appA.keyA.")
    assert token.count(".") == 3


def test_token_expires_at_its_expiry_time_with_40142() -> None:
    details = issue_token(KEY, now_ms=NOW, ttl=1_000)
    assert verify_token(details.token, lookup, now_ms=NOW + 999).expires == NOW + 1_000
    with pytest.raises(AblyError) as info:
        verify_token(details.token, lookup, now_ms=NOW + 1_000)
    assert info.value == refused(40142, 401)


def test_token_is_bounded_by_the_keys_current_capability() -> None:
    details = issue_token(KEY, now_ms=NOW)
    narrowed = ApiKey("appA", "keyA", SECRET, Capability.parse({"news": ["subscribe"]}))
    identity = verify_token(details.token, {narrowed.name: narrowed}.get, now_ms=NOW)
    assert not identity.capability.allows("chat:a", "publish")
    assert identity.capability.allows("news", "subscribe")
    gone = ApiKey("appA", "keyA", SECRET, Capability.parse({"elsewhere": ["*"]}))
    with pytest.raises(AblyError) as info:
        verify_token(details.token, {gone.name: gone}.get, now_ms=NOW)
    assert info.value == refused(40160, 401)


def test_token_of_a_removed_key_is_not_recognised() -> None:
    details = issue_token(KEY, now_ms=NOW)
    with pytest.raises(AblyError) as info:
        verify_token(details.token, {}.get, now_ms=NOW)
    assert info.value == refused(40143, 401)


def test_revoking_by_client_id_stops_its_tokens_with_40141() -> None:
    revocations = RevocationRegistry()
    details = issue_token(KEY, now_ms=NOW, client_id="mallory")
    bystander = issue_token(KEY, now_ms=NOW, client_id="bob")
    result = in_force(revocations, "appA.keyA", ["clientId:mallory"], now_ms=NOW + 10)
    assert result == {
        "successCount": 1,
        "failureCount": 0,
        "results": [
            {"target": "clientId:mallory", "issuedBefore": NOW + 10, "appliesAt": NOW + 10}
        ],
    }
    with pytest.raises(AblyError) as info:
        verify_token(details.token, lookup, now_ms=NOW + 10, revocations=revocations)
    assert info.value == refused(40141, 401)
    assert verify_token(bystander.token, lookup, now_ms=NOW + 10, revocations=revocations)


def test_token_issued_after_the_revocation_still_works() -> None:
    revocations = RevocationRegistry()
    in_force(revocations, "appA.keyA", ["clientId:mallory"], now_ms=NOW)
    fresh = issue_token(KEY, now_ms=NOW + 1, client_id="mallory")
    identity = verify_token(fresh.token, lookup, now_ms=NOW + 2, revocations=revocations)
    assert identity.client_id == "mallory"


def test_revocation_of_one_key_does_not_touch_another_keys_tokens() -> None:
    revocations = RevocationRegistry()
    in_force(revocations, "appA.keyB", ["clientId:mallory"], now_ms=NOW + 5)
    details = issue_token(KEY, now_ms=NOW, client_id="mallory")
    assert verify_token(details.token, lookup, now_ms=NOW + 5, revocations=revocations)


def test_reauth_margin_postpones_revocation_by_30_seconds() -> None:
    revocations = RevocationRegistry()
    details = issue_token(KEY, now_ms=NOW, client_id="mallory")
    result = in_force(
        revocations, "appA.keyA", ["clientId:mallory"], now_ms=NOW + 5, allow_reauth_margin=True
    )
    assert result["results"][0]["appliesAt"] == NOW + 5 + REAUTH_MARGIN_MS
    verify_token(
        details.token, lookup, now_ms=NOW + 5 + REAUTH_MARGIN_MS - 1, revocations=revocations
    )
    with pytest.raises(AblyError):
        verify_token(
            details.token, lookup, now_ms=NOW + 5 + REAUTH_MARGIN_MS, revocations=revocations
        )


def test_channel_target_revokes_tokens_naming_that_exact_resource() -> None:
    revocations = RevocationRegistry()
    foo = issue_token(KEY, now_ms=NOW, capability=Capability.parse({"chat:*": ["subscribe"]}))
    other = issue_token(KEY, now_ms=NOW, capability=Capability.parse({"chat:a": ["subscribe"]}))
    in_force(revocations, "appA.keyA", ["channel:chat:*"], now_ms=NOW + 1)
    assert revocations.is_revoked(verify_token(foo.token, lookup, now_ms=NOW + 1), NOW + 1)
    assert not revocations.is_revoked(verify_token(other.token, lookup, now_ms=NOW + 1), NOW + 1)


def test_invalid_revocation_target_fails_alone_with_40000() -> None:
    result, _ = RevocationRegistry().plan(
        "appA.keyA", ["clientId:x", "invalidType:abc", "clientId:"], now_ms=NOW
    )
    assert (result["successCount"], result["failureCount"]) == (1, 2)
    assert result["results"][1]["target"] == "invalidType:abc"
    assert result["results"][1]["error"]["code"] == 40000
    assert result["results"][1]["error"]["statusCode"] == 400


@pytest.mark.parametrize(
    ("targets", "issued_before"),
    [
        ([], None),
        (["clientId:x"] * 101, None),
        ("clientId:x", None),
        (["clientId:x"], NOW + 1),
        (["clientId:x"], NOW - 60 * 60 * 1000 - 1),
    ],
)
def test_malformed_revocation_request_is_refused_with_40003(
    targets: object, issued_before: int | None
) -> None:
    with pytest.raises(AblyError) as info:
        RevocationRegistry().plan(
            "appA.keyA",
            targets,  # type: ignore[arg-type]
            now_ms=NOW,
            issued_before=issued_before,
        )
    assert info.value == refused(40003, 400)


def test_token_request_round_trips_through_its_wire_form() -> None:
    request = create_token_request(KEY, now_ms=NOW, ttl=5, capability='{"a":["*"]}', client_id="c")
    again = TokenRequest.from_dict(json.loads(json.dumps(request.to_dict())))
    assert again == request
    assert again.mac_is_valid(SECRET)
    assert not again.mac_is_valid(OTHER.secret)
