"""Forged, tampered and replayed credentials: every one is refused with Ably's code and status.

Each case builds a credential an attacker could present and runs it through the one entry
point the server uses (relay.auth.credentials.authenticate) or the requestToken exchange.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import warnings
from collections.abc import Callable

import jwt
import pytest
from auth_support import in_force

from channel_relay.auth.capability import Capability
from channel_relay.auth.credentials import (
    authenticate,
    decode_client_id_header,
    message_client_id,
    parse_authorization,
)
from channel_relay.auth.identity import Identity
from channel_relay.auth.keys import ApiKey
from channel_relay.auth.revocation import RevocationRegistry
from channel_relay.auth.tokens import (
    TIMESTAMP_WINDOW_MS,
    create_token_request,
    issue_token,
    request_token,
)
from channel_relay.protocol.errors import AblyError
from channel_relay.store.sqlite import SqliteStore

NOW = 1_767_225_600_000
NOW_S = NOW // 1000
SECRET = "real-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
WRONG = "wrong-secret-0123456789-abcdefghijklmnopqrstuvwxy"
KEY = ApiKey("appS", "keyS", SECRET, Capability.parse({"public:*": ["subscribe"]}))


def lookup(name: str) -> ApiKey | None:
    return KEY if name == KEY.name else None


def b64url(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "iat": NOW_S,
        "exp": NOW_S + 600,
        "x-ably-capability": '{"public:*":["subscribe"]}',
        "x-ably-clientId": "eve",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def signed_jwt(secret: str = SECRET, kid: str | None = KEY.name, **overrides: object) -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(claims(**overrides), secret, algorithm="HS256", headers=headers)


def hand_made_jwt(header: dict[str, object], body: dict[str, object], secret: str | None) -> str:
    """A JWT built by hand, as an attacker would, signed with HMAC-SHA256 of `secret` if any."""
    signing_input = f"{b64url(json.dumps(header))}.{b64url(json.dumps(body))}"
    if secret is None:
        return signing_input + "."
    mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def tamper_jwt_claims(token: str, **changes: object) -> str:
    header, payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body.update(changes)
    return f"{header}.{b64url(json.dumps(body))}.{signature}"


def hs512_with_the_real_secret() -> str:
    with warnings.catch_warnings():
        # pyjwt warns that the secret is short for SHA-512; the point is that it is the real one.
        warnings.simplefilter("ignore")
        return jwt.encode(claims(), SECRET, algorithm="HS512", headers={"kid": KEY.name})


def native_token(secret: str = SECRET, **kwargs: object) -> str:
    key = ApiKey(KEY.app_id, KEY.key_id, secret, KEY.capability)
    return issue_token(key, now_ms=NOW, **kwargs).token  # type: ignore[arg-type]


def tamper_native(token: str, **changes: object) -> str:
    app, key, payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body.update(changes)
    return f"{app}.{key}.{b64url(json.dumps(body, separators=(',', ':')))}.{signature}"


def as_token(credential: str, now_ms: int = NOW) -> Callable[[], Identity]:
    return lambda: authenticate(credential, "token", lookup, now_ms=now_ms)


FORGED_TOKENS = [
    # --- Ably JWTs ---
    pytest.param(signed_jwt(WRONG), 40144, id="jwt-wrong-secret"),
    pytest.param(
        hand_made_jwt({"alg": "none", "typ": "JWT", "kid": KEY.name}, claims(), None),
        40144,
        id="jwt-alg-none",
    ),
    pytest.param(
        hand_made_jwt({"alg": "None", "kid": KEY.name}, claims(), None), 40144, id="jwt-alg-None"
    ),
    pytest.param(
        hs512_with_the_real_secret(),
        40144,
        id="jwt-alg-swap-hs512-right-secret",
    ),
    pytest.param(
        # Public-key confusion: an RS256 header "verified" with the HMAC secret as the key.
        hand_made_jwt({"alg": "RS256", "typ": "JWT", "kid": KEY.name}, claims(), SECRET),
        40144,
        id="jwt-alg-swap-rs256-hmac-signed",
    ),
    pytest.param(signed_jwt(kid="appS.nokey"), 40144, id="jwt-unknown-kid"),
    pytest.param(signed_jwt(kid="otherapp.keyS"), 40144, id="jwt-kid-of-another-app"),
    pytest.param(signed_jwt(kid=None), 40144, id="jwt-no-kid"),
    pytest.param(signed_jwt(iat=NOW_S - 600, exp=NOW_S - 1), 40142, id="jwt-expired"),
    pytest.param(signed_jwt(iat=NOW_S + 600, exp=NOW_S + 1200), 40144, id="jwt-iat-in-future"),
    pytest.param(signed_jwt(nbf=NOW_S + 600), 40144, id="jwt-not-before-in-future"),
    pytest.param(signed_jwt(exp=None), 40144, id="jwt-missing-exp"),
    pytest.param(signed_jwt(iat=None), 40144, id="jwt-missing-iat"),
    pytest.param(signed_jwt(exp="tomorrow"), 40144, id="jwt-non-numeric-exp"),
    pytest.param(signed_jwt(iat=NOW_S, exp=NOW_S - 10), 40144, id="jwt-exp-before-iat"),
    pytest.param(signed_jwt()[:-3], 40144, id="jwt-truncated-signature"),
    pytest.param(signed_jwt().rsplit(".", 1)[0] + ".", 40144, id="jwt-signature-stripped"),
    pytest.param(".".join(signed_jwt().split(".")[:2]), 40101, id="jwt-third-part-dropped"),
    pytest.param(signed_jwt()[:20], 40101, id="jwt-truncated-to-garbage"),
    pytest.param(signed_jwt(pad="x" * 9000), 40144, id="jwt-huge"),
    pytest.param(
        tamper_jwt_claims(signed_jwt(), **{"x-ably-capability": '{"*":["*"]}'}),
        40144,
        id="jwt-tampered-capability",
    ),
    pytest.param(
        tamper_jwt_claims(signed_jwt(), **{"x-ably-clientId": "admin"}),
        40144,
        id="jwt-tampered-client-id",
    ),
    pytest.param(
        tamper_jwt_claims(signed_jwt(exp=NOW_S - 1), exp=NOW_S + 9999),
        40144,
        id="jwt-tampered-expiry",
    ),
    pytest.param(
        jwt.encode(claims(), SECRET, algorithm="HS256", headers={"kid": KEY.name, "crit": ["b64"]}),
        40144,
        id="jwt-critical-extension",
    ),
    pytest.param("a.b.c", 40144, id="jwt-shaped-garbage"),
    # --- native tokens ---
    pytest.param(native_token(WRONG), 40143, id="native-wrong-secret"),
    pytest.param(
        tamper_native(native_token(), cap='{"*":["*"]}'), 40143, id="native-tampered-capability"
    ),
    pytest.param(tamper_native(native_token(), cid="admin"), 40143, id="native-tampered-client"),
    pytest.param(
        tamper_native(native_token(ttl=1000), exp=NOW + 10**9), 40143, id="native-tampered-expiry"
    ),
    pytest.param(native_token()[:-4], 40143, id="native-truncated-signature"),
    pytest.param(native_token().replace("appS.keyS", "appS.other"), 40143, id="native-other-key"),
    pytest.param(native_token(ttl=1000), 40142, id="native-expired"),
    pytest.param("appS.keyS." + "A" * 70_000 + ".sig", 40101, id="native-huge"),
    pytest.param("not-a-token", 40101, id="native-garbage"),
    pytest.param("appS.keyS.payload.!!!", 40101, id="native-bad-base64-signature"),
    pytest.param("", 40101, id="empty-token"),
]


@pytest.mark.parametrize(("credential", "code"), FORGED_TOKENS)
def test_forged_or_tampered_token_is_refused_with_ablys_code(credential: str, code: int) -> None:
    # native-expired was issued with a 1 s ttl; check it 2 s later.
    now = NOW + 2000 if code == 40142 and credential.count(".") == 3 else NOW
    with pytest.raises(AblyError) as info:
        as_token(credential, now)()
    assert info.value.code == code
    assert info.value.status == 401


def test_the_untampered_credentials_used_above_are_accepted() -> None:
    assert as_token(signed_jwt())().client_id == "eve"
    assert as_token(native_token(client_id="eve"))().client_id == "eve"


def test_revoked_token_is_refused_with_40141() -> None:
    revocations = RevocationRegistry()
    token = native_token(client_id="eve")
    in_force(revocations, KEY.name, ["clientId:eve"], now_ms=NOW + 1)
    with pytest.raises(AblyError) as info:
        authenticate(token, "token", lookup, now_ms=NOW + 1, revocations=revocations)
    assert (info.value.code, info.value.status) == (40141, 401)


def fresh_request(**fields: object) -> dict[str, object]:
    return create_token_request(KEY, now_ms=NOW, **fields).to_dict()  # type: ignore[arg-type]


def forged_request(**changes: object) -> dict[str, object]:
    return {**fresh_request(), **changes}


TOKEN_REQUESTS = [
    pytest.param(
        create_token_request(
            ApiKey(KEY.app_id, KEY.key_id, WRONG), now_ms=NOW, client_id="eve"
        ).to_dict(),
        NOW,
        (40101, 401),
        id="request-signed-with-wrong-secret",
    ),
    pytest.param(
        forged_request(capability='{"*":["*"]}'), NOW, (40101, 401), id="request-capability-raised"
    ),
    pytest.param(forged_request(ttl=86_400_000), NOW, (40101, 401), id="request-ttl-raised"),
    pytest.param(forged_request(clientId="admin"), NOW, (40101, 401), id="request-client-changed"),
    pytest.param(forged_request(mac=""), NOW, (40000, 400), id="request-without-mac"),
    pytest.param(forged_request(mac="%%%"), NOW, (40101, 401), id="request-garbage-mac"),
    pytest.param(
        fresh_request(), NOW + TIMESTAMP_WINDOW_MS + 1, (40104, 401), id="request-stale-timestamp"
    ),
    pytest.param(
        fresh_request(), NOW - TIMESTAMP_WINDOW_MS - 1, (40104, 401), id="request-from-the-future"
    ),
    pytest.param(
        forged_request(keyName="appS.nokey"), NOW, (40400, 401), id="request-for-unknown-key"
    ),
]


@pytest.mark.parametrize(("body", "now_ms", "expected"), TOKEN_REQUESTS)
async def test_forged_token_request_is_refused_with_ablys_code(
    body: dict[str, object], now_ms: int, expected: tuple[int, int], store: SqliteStore
) -> None:
    with pytest.raises(AblyError) as info:
        await request_token(body, lookup, now_ms=now_ms, nonces=store)
    assert (info.value.code, info.value.status) == expected


async def test_replayed_token_request_is_refused_with_40105(store: SqliteStore) -> None:
    body = fresh_request()
    await request_token(body, lookup, now_ms=NOW, nonces=store)
    with pytest.raises(AblyError) as info:
        await request_token(body, lookup, now_ms=NOW + 50, nonces=store)
    assert (info.value.code, info.value.status) == (40105, 401)


KEYS = [
    pytest.param(f"{KEY.name}:{WRONG}", (40101, 401), id="key-wrong-secret"),
    pytest.param(f"appS.nokey:{SECRET}", (40400, 401), id="key-unknown"),
    pytest.param(SECRET, (40101, 401), id="key-malformed"),
    pytest.param(f"{KEY.name}:", (40101, 401), id="key-empty-secret"),
    pytest.param(f"{KEY.name}:{SECRET[:-1]}", (40101, 401), id="key-truncated-secret"),
]


@pytest.mark.parametrize(("credential", "expected"), KEYS)
def test_wrong_or_malformed_key_is_refused(credential: str, expected: tuple[int, int]) -> None:
    with pytest.raises(AblyError) as info:
        authenticate(credential, "key", lookup, now_ms=NOW)
    assert (info.value.code, info.value.status) == expected


def test_valid_key_authenticates_with_its_capability_and_requested_client_id() -> None:
    identity = authenticate(str(KEY), "key", lookup, client_id="svc", now_ms=NOW)
    assert (identity.client_id, identity.method, identity.expires) == ("svc", "basic", None)
    assert identity.capability == KEY.capability


CLIENT_IDS = [
    pytest.param("key", str(KEY), "*", (40012, 400), id="key-may-not-claim-wildcard"),
    pytest.param("key", str(KEY), "", (40012, 400), id="key-empty-client-id"),
    pytest.param("key", str(KEY), 7, (40012, 400), id="key-non-string-client-id"),
    pytest.param("token", signed_jwt(), "mallory", (40102, 401), id="jwt-client-id-mismatch"),
    pytest.param(
        "token", native_token(client_id="eve"), "mallory", (40102, 401), id="native-mismatch"
    ),
    pytest.param(
        "token", native_token(), "mallory", (40102, 401), id="anonymous-token-cannot-take-an-id"
    ),
    pytest.param("token", native_token(client_id="*"), "*", (40012, 400), id="wildcard-request"),
]


@pytest.mark.parametrize(("kind", "credential", "client_id", "expected"), CLIENT_IDS)
def test_client_id_that_the_credential_does_not_permit_is_refused(
    kind: str, credential: str, client_id: object, expected: tuple[int, int]
) -> None:
    with pytest.raises(AblyError) as info:
        authenticate(credential, kind, lookup, client_id=client_id, now_ms=NOW)  # type: ignore[arg-type]
    assert (info.value.code, info.value.status) == expected


def test_wildcard_token_connection_takes_the_requested_client_id() -> None:
    token = native_token(client_id="*")
    assert authenticate(token, "token", lookup, client_id="frank", now_ms=NOW).client_id == "frank"
    assert authenticate(token, "token", lookup, now_ms=NOW).client_id == "*"


def test_matching_requested_client_id_is_accepted() -> None:
    assert (
        authenticate(signed_jwt(), "token", lookup, client_id="eve", now_ms=NOW).client_id == "eve"
    )


def identity(client_id: str | None, method: str) -> Identity:
    return Identity("appS", KEY.name, KEY.capability, client_id=client_id, method=method)  # type: ignore[arg-type]


MESSAGE_CLIENT_IDS = [
    # (connection clientId, auth method, message clientId, stamped clientId or error code)
    ("eve", "token", None, "eve"),
    ("eve", "token", "eve", "eve"),
    ("eve", "token", "mallory", 40012),
    ("eve", "basic", "mallory", 40012),
    ("*", "token", "anyone", "anyone"),
    ("*", "token", None, None),
    (None, "token", "mallory", 40012),
    (None, "token", None, None),
    (None, "basic", "svc-chosen", "svc-chosen"),
    ("*", "token", "*", 40012),
    ("*", "token", "", 40012),
]


@pytest.mark.parametrize(("own", "method", "claimed", "expected"), MESSAGE_CLIENT_IDS)
def test_message_client_id_cannot_be_spoofed(
    own: str | None, method: str, claimed: str | None, expected: str | int | None
) -> None:
    if isinstance(expected, int):
        with pytest.raises(AblyError) as info:
            message_client_id(identity(own, method), claimed)
        assert (info.value.code, info.value.status) == (expected, 400)
    else:
        assert message_client_id(identity(own, method), claimed) == expected


def test_bearer_token_is_accepted_raw_or_base64_encoded() -> None:
    token = native_token()
    assert parse_authorization(f"Bearer {token}") == ("token", token)
    encoded = base64.b64encode(token.encode()).decode()
    assert parse_authorization(f"Bearer {encoded}") == ("token", token)
    basic = base64.b64encode(str(KEY).encode()).decode()
    assert parse_authorization(f"Basic {basic}") == ("key", str(KEY))


@pytest.mark.parametrize(
    "header", ["Digest abc", "Basic !!!", "Basic " + b64url("no-colon"), "Bearer", "Bearer ***"]
)
def test_malformed_authorization_header_is_refused_with_40101(header: str) -> None:
    with pytest.raises(AblyError) as info:
        parse_authorization(header)
    assert (info.value.code, info.value.status) == (40101, 401)


def test_client_id_header_is_base64_and_garbage_is_40012() -> None:
    assert decode_client_id_header(base64.b64encode("zoë".encode()).decode()) == "zoë"
    with pytest.raises(AblyError) as info:
        decode_client_id_header("***")
    assert (info.value.code, info.value.status) == (40012, 400)
