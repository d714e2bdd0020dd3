"""Capability parsing, matching and intersection, from Ably's documented rules.

Sources: ably/docs auth/capabilities.mdx ("Resource names and wildcards", "Token capability
determination") and ably-js test/rest/capability.test.js with the ably-common test app keys.
"""

from __future__ import annotations

import itertools
import json

import pytest

from channel_relay.auth.capability import ALL, OPERATIONS, Capability
from channel_relay.protocol.errors import AblyError

# (resource, channel, matches) - the examples of "Resource names and wildcards".
MATCHING = [
    ("*", "foo", True),
    ("*", "foo:bar", True),
    ("*", "foo:bar:baz", True),
    ("*", "[meta]metaname", False),
    ("*", "[queue]appid-queuename", False),
    ("namespace:*", "namespace:channel", True),
    ("namespace:*", "namespace:channel:other", True),
    ("namespace:*", "namespace", False),
    ("namespace:*", "othernamespace:channel", False),
    ("foo:*:baz", "foo:bar:baz", True),
    ("foo:*:baz", "foo:bar:bam:baz", False),
    ("foo:*:baz", "foo:bar:bam", False),
    ("foo:*", "foo:bar", True),
    ("foo:*", "foo:bar:bam", True),
    ("foo:*", "foo:bar:bam:baz", True),
    ("foo*", "foo*", True),
    ("foo*", "foobar", False),
    ("foo*", "foo", False),
    ("[queue]*", "[queue]appid-queuename", True),
    ("[queue]*", "appid-queuename", False),
    ("[meta]*", "[meta]metaname", True),
    ("[meta]*", "metaname", False),
    ("[meta]*", "[queue]q", False),
    ("[*]*", "plain", True),
    ("[*]*", "a:b:c", True),
    ("[*]*", "[meta]metaname", True),
    ("[*]*", "[queue]appid-queuename", True),
    ("exact", "exact", True),
    ("exact", "exactly", False),
    ("exact", "exact:sub", False),
    ("a:b", "a:b", True),
    ("a:b", "a:c", False),
]


@pytest.mark.parametrize(("resource", "channel", "expected"), MATCHING)
def test_resource_wildcards_replace_whole_segments_as_ably_documents(
    resource: str, channel: str, expected: bool
) -> None:
    capability = Capability.parse({resource: ["subscribe"]})
    assert capability.allows(channel, "subscribe") is expected


def test_channel_params_qualifier_does_not_change_which_resource_matches() -> None:
    capability = Capability.parse({"chat:*": ["subscribe"]})
    assert capability.allows("[?rewind=1]chat:room", "subscribe")
    assert not capability.allows("[?rewind=1]other", "subscribe")


def test_wildcard_operation_grants_every_operation() -> None:
    capability = Capability.parse({"room": ["*"]})
    assert all(capability.allows("room", op) for op in OPERATIONS)
    assert capability.operations("room") == OPERATIONS


def test_named_operations_grant_only_those() -> None:
    capability = Capability.parse({"room": ["subscribe", "history"], "room:*": ["publish"]})
    assert capability.allows("room", "subscribe")
    assert capability.allows("room", "history")
    assert not capability.allows("room", "publish")
    assert not capability.allows("room", "presence")
    assert capability.allows("room:sub", "publish")
    assert capability.operations("room") == {"subscribe", "history"}
    assert capability.operations("elsewhere") == frozenset()


def test_operations_granted_by_several_resources_add_up() -> None:
    capability = Capability.parse({"*": ["subscribe"], "chat:*": ["publish"]})
    assert capability.operations("chat:1") == {"subscribe", "publish"}


def test_stats_is_granted_only_on_the_wildcard_resource() -> None:
    assert Capability.parse({"*": ["stats"]}).allows_app_wide("stats")
    assert Capability.parse({"[*]*": ["*"]}).allows_app_wide("stats")
    assert not Capability.parse({"chat:*": ["stats"]}).allows_app_wide("stats")
    assert not Capability.parse({"*": ["subscribe"]}).allows_app_wide("stats")


def test_default_key_capability_allows_everything_on_plain_channels() -> None:
    assert ALL.to_json() == '{"*":["*"]}'
    assert ALL.allows("any:channel:name", "publish")
    assert not ALL.allows("[meta]log", "subscribe")


# Invalid capabilities: the three of ably-js rest/capability ("Invalid capabilities 1-3")
# and other malformed shapes; Ably answers each with status 400.
INVALID = [
    '{"channel0":["publish_"]}',
    '{"channel0":["*","publish"]}',
    '{"channel0":[]}',
    "not json",
    "[]",
    '["subscribe"]',
    "{}",
    '{"channel0":"subscribe"}',
    '{"channel0":[1]}',
    '{"":["subscribe"]}',
    "null",
]


@pytest.mark.parametrize("text", INVALID)
def test_malformed_capability_is_refused_with_40000_and_status_400(text: str) -> None:
    with pytest.raises(AblyError) as info:
        Capability.parse(text)
    assert (info.value.code, info.value.status) == (40000, 400)


def test_every_documented_operation_is_accepted() -> None:
    ops = [
        "subscribe",
        "publish",
        "presence",
        "object-subscribe",
        "object-publish",
        "annotation-subscribe",
        "annotation-publish",
        "message-update-own",
        "message-update-any",
        "message-delete-own",
        "message-delete-any",
        "history",
        "stats",
        "push-subscribe",
        "push-admin",
        "channel-metadata",
        "privileged-headers",
    ]
    assert Capability.parse({"x": ops}).operations("x") == set(ops)


def test_to_json_sorts_resources_and_keeps_the_given_operation_order() -> None:
    capability = Capability.parse('{ "b": ["subscribe", "publish"], "a": ["*"] }')
    assert capability.to_json() == '{"a":["*"],"b":["subscribe","publish"]}'
    assert Capability.parse(capability.to_json()) == capability


def test_a_token_lists_operations_in_the_order_they_were_requested() -> None:
    # ably-js sorts a requested capability's lists in place before sending it (c14n), then
    # deep-equals the token's capability against them: Ably answers in the requested order.
    key = Capability.parse({"room": ["publish", "subscribe", "presence"]})
    requested = Capability.parse({"room": ["presence", "publish"]})
    assert requested.within(key).to_json() == '{"room":["presence","publish"]}'


# The ably-common test app keys ably-js's capability tests run against.
KEY1 = (
    '{ "cansubscribe:*":["subscribe"], "canpublish:*":["publish"], '
    '"canpublish:andpresence":["presence","publish"], '
    '"pushenabled:*":["publish","subscribe","push-subscribe"], '
    '"pushenabled:admin:*":["publish","subscribe","push-admin"] }'
)
KEY2 = (
    '{ "channel0":["publish"], "channel1":["publish"], "channel2":["publish", "subscribe"], '
    '"channel3":["subscribe"], "channel4":["presence", "publish", "subscribe"], '
    '"channel5":["presence"], "channel6":["*"] }'
)
KEY3 = '{ "*":["subscribe"] }'
DOCS_KEY = (
    '{"your-namespace:*":["publish","subscribe","presence"],'
    '"notifications":["subscribe","history"],"alerts":["subscribe"]}'
)

# (key capability, requested capability, resulting token capability)
INTERSECTIONS = [
    pytest.param(
        DOCS_KEY,
        '{"your-namespace:user-123":["subscribe"],"notifications":["*"],'
        '"private":["publish","subscribe"]}',
        {"your-namespace:user-123": ["subscribe"], "notifications": ["subscribe", "history"]},
        id="docs-intersection-example",
    ),
    pytest.param(KEY1, KEY1, json.loads(KEY1), id="equal-intersection"),
    pytest.param(
        KEY2,
        '{"channel2":["presence","subscribe"]}',
        {"channel2": ["subscribe"]},
        id="ops-intersection-non-empty",
    ),
    pytest.param(
        KEY2,
        '{"channel2":["presence","subscribe"],"channelx":["presence","subscribe"]}',
        {"channel2": ["subscribe"]},
        id="paths-intersection-non-empty",
    ),
    pytest.param(
        KEY2,
        '{"channel2":["*"]}',
        {"channel2": ["publish", "subscribe"]},
        id="wildcard-token-with-publish-and-subscribe-key",
    ),
    pytest.param(
        KEY2,
        '{"channel6":["publish","subscribe"]}',
        {"channel6": ["publish", "subscribe"]},
        id="publish-and-subscribe-token-with-wildcard-key",
    ),
    pytest.param(
        KEY3,
        '{"cansubscribe":["subscribe"]}',
        {"cansubscribe": ["subscribe"]},
        id="resources-wildcard-matching-1",
    ),
    pytest.param(
        KEY1,
        '{"canpublish:check":["publish"]}',
        {"canpublish:check": ["publish"]},
        id="resources-wildcard-matching-2",
    ),
    pytest.param(
        KEY3,
        '{"cansubscribe:*":["subscribe"]}',
        {"cansubscribe:*": ["subscribe"]},
        id="resources-wildcard-matching-3",
    ),
    pytest.param('{"*":["*"]}', '{"[*]*":["history"]}', {"*": ["history"]}, id="all-vs-[*]*"),
    pytest.param(
        '{"[*]*":["*"]}', '{"[meta]*":["subscribe"]}', {"[meta]*": ["subscribe"]}, id="meta"
    ),
    pytest.param(
        '{"foo:*:baz":["*"]}', '{"foo:bar:*":["publish"]}', {"foo:bar:baz": ["publish"]}, id="mid"
    ),
    pytest.param('{"*:x":["*"]}', '{"y:*":["publish"]}', {"y:x": ["publish"]}, id="crossed"),
]


@pytest.mark.parametrize(("key", "requested", "expected"), INTERSECTIONS)
def test_token_capability_is_the_intersection_with_the_key(
    key: str, requested: str, expected: dict[str, list[str]]
) -> None:
    result = Capability.parse(requested).within(Capability.parse(key))
    # Lists compare in order: ably-js deep-equals them against the key's own lists.
    assert json.loads(result.to_json()) == expected


def test_equal_intersection_keeps_the_keys_operation_order() -> None:
    result = Capability.parse(KEY1).within(Capability.parse(KEY1))
    assert json.loads(result.to_json())["pushenabled:*"] == [
        "publish",
        "subscribe",
        "push-subscribe",
    ]


EMPTY_INTERSECTIONS = [
    pytest.param(KEY1, '{"canpublish:test":["subscribe"]}', id="empty-ops-intersection"),
    pytest.param(KEY2, '{"channelx":["publish"]}', id="empty-paths-intersection"),
    pytest.param('{"your-namespace":["*"]}', '{"other-namespace":["*"]}', id="docs-incompatible"),
    pytest.param('{"*":["*"]}', '{"[meta]*":["subscribe"]}', id="plain-vs-meta"),
    pytest.param('{"a:*":["*"]}', '{"a":["subscribe"]}', id="namespace-needs-a-segment"),
    pytest.param('{"a:*:c":["*"]}', '{"a:b":["subscribe"]}', id="lengths-differ"),
]


@pytest.mark.parametrize(("key", "requested"), EMPTY_INTERSECTIONS)
def test_token_request_with_no_common_capability_is_refused_with_40160(
    key: str, requested: str
) -> None:
    assert Capability.parse(requested).intersect(Capability.parse(key)).is_empty
    with pytest.raises(AblyError) as info:
        Capability.parse(requested).within(Capability.parse(key))
    assert (info.value.code, info.value.status) == (40160, 401)


PATTERNS = ["*", "[*]*", "a", "a:*", "a:b", "a:*:c", "*:c", "*:*", "b:*", "[meta]*", "[meta]a:*"]
NAMES = ["a", "b", "a:b", "a:c", "a:b:c", "b:c", "a:x:c", "x:y:z:c", "[meta]a", "[meta]a:b", "c"]


@pytest.mark.parametrize(("a", "b"), list(itertools.product(PATTERNS, repeat=2)))
def test_intersection_allows_exactly_what_both_allow(a: str, b: str) -> None:
    left, right = Capability.parse({a: ["publish"]}), Capability.parse({b: ["*"]})
    both = left.intersect(right)
    for name in NAMES:
        assert both.allows(name, "publish") == (
            left.allows(name, "publish") and right.allows(name, "publish")
        ), name
