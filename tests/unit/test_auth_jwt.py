"""Ably JWTs made with pyjwt, as an app's auth server makes them, and embedded-token JWTs."""

from __future__ import annotations

import jwt
import pytest
from auth_support import in_force

from channel_relay.auth.capability import Capability
from channel_relay.auth.credentials import authenticate, verify_any_token
from channel_relay.auth.jwt import CLOCK_SKEW_MS, embedded_token, is_jwt, verify_jwt
from channel_relay.auth.keys import ApiKey
from channel_relay.auth.revocation import RevocationRegistry
from channel_relay.auth.tokens import issue_token
from channel_relay.protocol.errors import AblyError

NOW = 1_767_225_600_000
NOW_S = NOW // 1000
SECRET = "jwt-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
KEY = ApiKey("appJ", "keyJ", SECRET, Capability.parse({"chat:*": ["*"], "news": ["subscribe"]}))


def lookup(name: str) -> ApiKey | None:
    return KEY if name == KEY.name else None


def make_jwt(
    claims: dict | None = None, *, headers: dict | None = None, **overrides: object
) -> str:
    body: dict[str, object] = {
        "iat": NOW_S,
        "exp": NOW_S + 3600,
        "x-ably-capability": '{"chat:*":["publish","subscribe"]}',
    }
    body.update(claims or {})
    body.update(overrides)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, SECRET, algorithm="HS256", headers={"kid": KEY.name, **(headers or {})})


def code_of(call: object) -> tuple[int, int]:
    with pytest.raises(AblyError) as info:
        call()  # type: ignore[operator]
    return info.value.code, info.value.status


def test_jwt_signed_with_the_key_secret_identifies_its_client() -> None:
    token = make_jwt({"x-ably-clientId": "alice"})
    identity = verify_jwt(token, lookup, now_ms=NOW)
    assert identity.app_id == "appJ"
    assert identity.key_name == "appJ.keyJ"
    assert identity.client_id == "alice"
    assert identity.issued == NOW
    assert identity.expires == NOW + 3_600_000
    assert identity.method == "token"
    assert identity.capability.allows("chat:room", "publish")
    assert not identity.capability.allows("chat:room", "presence")


def test_jwt_capability_is_intersected_with_the_keys() -> None:
    token = make_jwt({"x-ably-capability": '{"*":["subscribe","publish"]}'})
    identity = verify_jwt(token, lookup, now_ms=NOW)
    assert (
        identity.capability.to_json() == '{"chat:*":["subscribe","publish"],"news":["subscribe"]}'
    )


def test_jwt_capability_outside_the_keys_is_refused_with_40160() -> None:
    token = make_jwt({"x-ably-capability": '{"private":["publish"]}'})
    assert code_of(lambda: verify_jwt(token, lookup, now_ms=NOW)) == (40160, 401)


def test_jwt_with_an_invalid_capability_is_refused_with_40000() -> None:
    token = make_jwt({"x-ably-capability": '{"chat:*":["shout"]}'})
    assert code_of(lambda: verify_jwt(token, lookup, now_ms=NOW)) == (40000, 400)


def test_jwt_without_a_capability_claim_gets_the_keys_capability() -> None:
    token = make_jwt({"x-ably-capability": None})
    assert verify_jwt(token, lookup, now_ms=NOW).capability == KEY.capability


def test_jwt_iat_slightly_ahead_of_the_relay_clock_is_tolerated() -> None:
    token = make_jwt(iat=NOW_S + CLOCK_SKEW_MS // 1000)
    assert verify_jwt(token, lookup, now_ms=NOW).issued == NOW + CLOCK_SKEW_MS


def test_jwt_expires_at_exp_with_40142() -> None:
    token = make_jwt(exp=NOW_S + 1)
    assert verify_jwt(token, lookup, now_ms=NOW + 999).expires == NOW + 1000
    assert code_of(lambda: verify_jwt(token, lookup, now_ms=NOW + 1000)) == (40142, 401)


@pytest.mark.parametrize("client_id", [5, "", ["a"]])
def test_jwt_with_a_malformed_client_id_is_refused_with_40012(client_id: object) -> None:
    token = make_jwt({"x-ably-clientId": client_id})
    assert code_of(lambda: verify_jwt(token, lookup, now_ms=NOW)) == (40012, 400)


def test_revocation_key_claim_lets_a_group_of_jwts_be_revoked() -> None:
    revocations = RevocationRegistry()
    token = make_jwt({"x-ably-revocation-key": "users.group1"})
    assert verify_jwt(token, lookup, now_ms=NOW, revocations=revocations)
    in_force(revocations, "appJ.keyJ", ["revocationKey:users.group1"], now_ms=NOW + 10)
    check = lambda: verify_jwt(token, lookup, now_ms=NOW + 10, revocations=revocations)  # noqa: E731
    assert code_of(check) == (40141, 401)


def test_revoking_a_client_id_stops_its_jwts() -> None:
    revocations = RevocationRegistry()
    token = make_jwt({"x-ably-clientId": "mallory"})
    in_force(revocations, "appJ.keyJ", ["clientId:mallory"], now_ms=NOW + 10)
    check = lambda: verify_any_token(token, lookup, now_ms=NOW + 10, revocations=revocations)  # noqa: E731
    assert code_of(check) == (40141, 401)


def test_jwts_and_native_tokens_are_told_apart_by_shape() -> None:
    assert is_jwt(make_jwt())
    assert not is_jwt(issue_token(KEY, now_ms=NOW).token)


def wrap(inner: str, exp: int | None = NOW_S + 600, *, in_header: bool = True) -> str:
    claims: dict[str, object] = {} if exp is None else {"exp": exp}
    headers = {"x-ably-token": inner} if in_header else None
    if not in_header:
        claims["x-ably-token"] = inner
    return jwt.encode(claims, "the-apps-own-secret-0123456789abcdef", headers=headers)


@pytest.mark.parametrize("in_header", [True, False])
def test_jwt_wrapping_a_native_token_authenticates_as_that_token(in_header: bool) -> None:
    inner = issue_token(KEY, now_ms=NOW, client_id="carol")
    identity = authenticate(wrap(inner.token, in_header=in_header), "token", lookup, now_ms=NOW)
    assert identity.client_id == "carol"
    assert identity.expires == inner.expires


def test_jwt_wrapping_an_ably_jwt_authenticates_as_the_inner_jwt() -> None:
    inner = make_jwt({"x-ably-clientId": "dave"})
    assert authenticate(wrap(inner), "token", lookup, now_ms=NOW).client_id == "dave"


def test_wrapping_jwt_may_not_outlive_its_enclosed_token() -> None:
    inner = issue_token(KEY, now_ms=NOW, ttl=60_000)
    token = wrap(inner.token, exp=NOW_S + 61)
    assert code_of(lambda: authenticate(token, "token", lookup, now_ms=NOW)) == (40144, 401)


def test_expired_wrapping_jwt_is_refused_with_40142() -> None:
    inner = issue_token(KEY, now_ms=NOW)
    token = wrap(inner.token, exp=NOW_S)
    assert code_of(lambda: authenticate(token, "token", lookup, now_ms=NOW)) == (40142, 401)


def test_wrapped_token_is_still_verified() -> None:
    forged = issue_token(ApiKey("appJ", "keyJ", "not-the-secret-0123456789abcdefgh"), now_ms=NOW)
    token = wrap(forged.token)
    assert code_of(lambda: authenticate(token, "token", lookup, now_ms=NOW)) == (40143, 401)


def test_wrapping_may_not_be_nested() -> None:
    inner = wrap(issue_token(KEY, now_ms=NOW).token)
    assert code_of(lambda: authenticate(wrap(inner), "token", lookup, now_ms=NOW)) == (40144, 401)


def test_plain_ably_jwt_has_no_embedded_token() -> None:
    assert embedded_token(make_jwt()) is None
