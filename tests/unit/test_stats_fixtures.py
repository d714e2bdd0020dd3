"""Stats fixtures in Ably's v1 shape (as the SDK suites post them to the sandbox) read back as
the entries Ably's stats schema names."""

from __future__ import annotations

from channel_relay.stats import fixture_entries

_V1 = {
    "intervalId": "2025-02-03:15:05",
    "inbound": {"realtime": {"messages": {"count": 70, "data": 7000}}},
    "outbound": {"realtime": {"messages": {"count": 40, "data": 4000}}},
    "persisted": {"presence": {"count": 20, "data": 2000}},
    "connections": {"tls": {"peak": 20, "opened": 10}},
    "channels": {"peak": 50, "opened": 30},
    "apiRequests": {"succeeded": 50, "failed": 10},
    "tokenRequests": {"succeeded": 60, "failed": 20},
}


def test_messages_all_sums_inbound_and_outbound() -> None:
    entries = fixture_entries(_V1)
    assert entries["messages.all.messages.count"] == 70 + 40
    assert entries["messages.all.messages.data"] == 7000 + 4000
    assert entries["messages.all.all.count"] == 70 + 40


def test_directions_are_kept_per_transport_and_summed_over_kinds() -> None:
    entries = fixture_entries(_V1)
    assert entries["messages.inbound.realtime.messages.count"] == 70
    assert entries["messages.inbound.realtime.all.count"] == 70
    assert entries["messages.inbound.all.messages.data"] == 7000
    assert entries["messages.outbound.realtime.all.data"] == 4000
    assert entries["messages.persisted.presence.count"] == 20


def test_api_requests_are_the_other_requests_and_all_counts_token_requests_too() -> None:
    entries = fixture_entries(_V1)
    assert entries["apiRequests.other.succeeded"] == 50
    assert entries["apiRequests.other.failed"] == 10
    assert entries["apiRequests.tokenRequests.succeeded"] == 60
    assert entries["apiRequests.all.succeeded"] == 50 + 60
    assert entries["apiRequests.all.failed"] == 10 + 20


def test_connections_and_channels() -> None:
    entries = fixture_entries(_V1)
    assert entries["connections.tls.peak"] == 20
    assert entries["connections.all.opened"] == 10
    assert entries["channels.peak"] == 50


def test_ready_made_entries_are_taken_as_they_are() -> None:
    fixture = {"intervalId": "2025-02-03:15:05", "entries": {"messages.all.all.count": 3}}
    assert fixture_entries(fixture) == {"messages.all.all.count": 3}
