"""What the relay accepts from a publisher: channel names, message fields, sizes and clientIds,
each refusal with the code Ably's own service uses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from channel_relay.auth.authenticator import stamp_client_ids
from channel_relay.auth.capability import ALL
from channel_relay.auth.identity import AuthMethod, Identity
from channel_relay.protocol.errors import AblyError
from channel_relay.protocol.validation import check_channel_name, message_size, parse_messages

LIMIT = 65536


def _code(fn: Any, *args: Any) -> tuple[int, int]:
    with pytest.raises(AblyError) as info:
        fn(*args)
    return info.value.code, info.value.status


# Channel names


@pytest.mark.parametrize(
    "name",
    ["", "[meta]chan", "[?rewind=1]chan", ":leading-colon", "line\nbreak", "carriage\rreturn"],
    ids=repr,
)
def test_invalid_channel_names_are_refused_with_40010(name: str) -> None:
    assert _code(check_channel_name, name) == (40010, 400)


@pytest.mark.parametrize("name", [None, 7, b"bytes", ["list"]], ids=repr)
def test_a_channel_name_that_is_not_a_string_is_refused_with_40010(name: Any) -> None:
    assert _code(check_channel_name, name) == (40010, 400)


@pytest.mark.parametrize(
    "name",
    [
        "chat",
        "x y/é",
        "with spaces and / slashes",
        "ünïcödé ☃ 频道",
        "namespace:room:1",
        "a]b[c",
        "trailing:",
        "100%",
        "a+b",
        "tab\there",
    ],
    ids=repr,
)
def test_ordinary_channel_names_are_accepted_as_given(name: str) -> None:
    assert check_channel_name(name) == name


# Message fields


def test_a_single_message_object_is_accepted_like_a_list_of_one() -> None:
    assert parse_messages({"name": "n", "data": "d"}, LIMIT) == [{"name": "n", "data": "d"}]


@pytest.mark.parametrize("raw", [[], None, "text", 5])
def test_a_publish_with_no_messages_is_refused_with_40013(raw: Any) -> None:
    assert _code(parse_messages, raw, LIMIT) == (40013, 400)


def test_a_message_that_is_not_an_object_is_refused_with_40013() -> None:
    assert _code(parse_messages, ["just a string"], LIMIT) == (40013, 400)


@pytest.mark.parametrize("name", [5, ["n"], {"n": 1}, True])
def test_a_non_string_message_name_is_refused_with_40016(name: Any) -> None:
    assert _code(parse_messages, [{"name": name, "data": "d"}], LIMIT) == (40016, 400)


@pytest.mark.parametrize("client_id", [5, "", ["alice"], False])
def test_a_non_string_or_empty_client_id_is_refused_with_40012(client_id: Any) -> None:
    assert _code(parse_messages, [{"clientId": client_id}], LIMIT) == (40012, 400)


@pytest.mark.parametrize("extras", ["headers", 5, ["push"], True])
def test_extras_that_are_not_an_object_are_refused_with_40032(extras: Any) -> None:
    assert _code(parse_messages, [{"data": "d", "extras": extras}], LIMIT) == (40032, 400)


@pytest.mark.parametrize("data", [42, 4.2, True, False])
def test_number_or_boolean_data_is_refused_with_40013(data: Any) -> None:
    assert _code(parse_messages, [{"data": data}], LIMIT) == (40013, 400)


@pytest.mark.parametrize("field", ["id", "encoding"])
def test_non_string_id_or_encoding_is_refused_with_40013(field: str) -> None:
    assert _code(parse_messages, [{"data": "d", field: 5}], LIMIT) == (40013, 400)


@pytest.mark.parametrize(
    ("data", "encoding", "expected_encoding"),
    [
        ({"a": [1, "é"]}, None, "json"),
        ([1, 2, {"b": None}], None, "json"),
        ({"k": "v"}, "utf-8", "utf-8/json"),
    ],
)
def test_object_and_array_data_become_a_json_string_with_a_json_step(
    data: Any, encoding: str | None, expected_encoding: str
) -> None:
    raw: dict[str, Any] = {"data": data}
    if encoding is not None:
        raw["encoding"] = encoding
    (message,) = parse_messages([raw], LIMIT)
    assert isinstance(message["data"], str)
    assert json.loads(message["data"]) == data
    assert message["encoding"] == expected_encoding


def test_string_binary_and_absent_data_pass_through_unchanged() -> None:
    messages = parse_messages([{"data": "text"}, {"data": b"\x00\x01"}, {"name": "only"}], LIMIT)
    assert messages == [{"data": "text"}, {"data": b"\x00\x01"}, {"name": "only"}]


def test_what_ably_js_adds_to_every_publish_is_tolerated_and_dropped() -> None:
    # ably-js sends `action: 0` on every plain publish and caches its size calculation in `size`.
    raw = {"action": 0, "size": 5, "name": "n", "data": "hello", "id": "abc:0"}
    assert parse_messages([raw], LIMIT) == [{"name": "n", "data": "hello", "id": "abc:0"}]


def test_fields_only_the_relay_may_set_are_dropped() -> None:
    raw = {
        "data": "d",
        "serial": "forged",
        "timestamp": 1,
        "connectionId": "someone-else",
        "version": {"serial": "x"},
    }
    assert parse_messages([raw], LIMIT) == [{"data": "d"}]


def test_null_fields_from_a_json_client_are_treated_as_absent() -> None:
    raw = {"name": None, "data": None, "encoding": None, "clientId": None, "extras": None}
    assert parse_messages([{**raw, "id": "x"}], LIMIT) == [{"id": "x"}]


def test_parse_returns_copies_and_leaves_the_decoded_frame_alone() -> None:
    raw = {"data": {"a": 1}, "action": 0}
    parse_messages([raw], LIMIT)
    assert raw == {"data": {"a": 1}, "action": 0}


# Size


def test_size_counts_name_client_id_data_and_extras_in_bytes() -> None:
    message = {"name": "né", "clientId": "c", "data": "☃", "extras": {"a": 1}}
    assert message_size(message) == 3 + 1 + 3 + len('{"a":1}')
    assert message_size({"data": b"\x00" * 10}) == 10
    assert message_size({}) == 0


def test_a_message_of_exactly_the_limit_is_accepted() -> None:
    assert parse_messages([{"data": "x" * LIMIT}], LIMIT)


def test_a_message_one_byte_over_the_limit_is_refused_with_40009() -> None:
    assert _code(parse_messages, [{"data": "x" * (LIMIT + 1)}], LIMIT) == (40009, 413)


def test_the_limit_applies_to_the_combined_size_of_one_publish() -> None:
    half = {"name": "n", "data": "x" * (LIMIT // 2)}
    with pytest.raises(AblyError) as info:
        parse_messages([half, half], LIMIT)
    assert info.value.code == 40009
    assert str(LIMIT) in info.value.message
    assert parse_messages([half], LIMIT)


def test_object_data_is_measured_as_its_json_text() -> None:
    data = {"k": "x" * (LIMIT - 10)}
    assert len(json.dumps(data, separators=(",", ":"))) > LIMIT - 10
    with pytest.raises(AblyError) as info:
        parse_messages([{"data": data, "name": "0123456789"}], LIMIT)
    assert info.value.code == 40009


def test_binary_data_is_measured_decoded_not_as_base64() -> None:
    # 48 KiB of bytes is 64 KiB of base64: it must still fit a 64 KiB limit.
    assert parse_messages([{"data": b"\x07" * 49152}], LIMIT)


# clientId stamping (the rules live with auth; a publish applies them after validation)


def _identity(client_id: str | None, method: AuthMethod = "basic") -> Identity:
    return Identity("app", "app.key", ALL, client_id=client_id, method=method)


def test_an_identified_publisher_has_its_client_id_stamped_on_each_message() -> None:
    messages = [{"data": "a"}, {"data": "b", "clientId": "alice"}]
    stamp_client_ids(_identity("alice"), messages)
    assert [m["clientId"] for m in messages] == ["alice", "alice"]


@pytest.mark.parametrize("method", ["basic", "token"])
def test_an_identified_publisher_may_not_publish_as_someone_else(method: AuthMethod) -> None:
    messages = [{"data": "a", "clientId": "mallory"}]
    assert _code(stamp_client_ids, _identity("alice", method), messages) == (40012, 400)


def test_an_anonymous_key_may_publish_any_client_id_or_none() -> None:
    messages = [{"data": "a", "clientId": "bob"}, {"data": "b"}]
    stamp_client_ids(_identity(None), messages)
    assert messages == [{"data": "a", "clientId": "bob"}, {"data": "b"}]


def test_a_wildcard_token_may_publish_any_client_id_but_never_stamps_the_wildcard() -> None:
    messages = [{"data": "a", "clientId": "bob"}, {"data": "b"}]
    stamp_client_ids(_identity("*", "token"), messages)
    assert messages == [{"data": "a", "clientId": "bob"}, {"data": "b"}]


def test_an_anonymous_token_may_not_claim_a_client_id() -> None:
    messages = [{"data": "a", "clientId": "bob"}]
    assert _code(stamp_client_ids, _identity(None, "token"), messages) == (40012, 400)


@pytest.mark.parametrize("claimed", ["*", ""])
def test_the_wildcard_and_empty_client_ids_are_never_valid_on_a_message(claimed: str) -> None:
    messages = [{"data": "a", "clientId": claimed}]
    assert _code(stamp_client_ids, _identity(None), messages) == (40012, 400)
