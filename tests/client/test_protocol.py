"""The protocol layer of `client` against the in-process relay: publish/ACK serials, subscribe,
history, mutations, presence, resume with resend, continuity, token and JWT renewal."""

from __future__ import annotations

import asyncio
import json
import time

import jwt
import pytest
from client_support import MakeClient, abort_socket

from channel_relay.client import AblyError, ContinuityLostError, Message, request_token
from channel_relay.client.connection import ConnectionState
from channel_relay.protocol.actions import MessageAction, PresenceAction
from channel_relay.server import Relay


@pytest.mark.parametrize("fmt", ["msgpack", "json"])
async def test_publish_returns_serials_and_subscribers_get_them(
    make_client: MakeClient, fmt: str
) -> None:
    pub = await make_client("alice", format=fmt)
    sub = await make_client("bob", format="json" if fmt == "msgpack" else "msgpack")
    channel = sub.channels.get("plain:pub")
    everything = channel.subscribe()
    named: list[Message] = []
    channel.subscribe(named.append, name="b")
    await channel.attach()
    [one] = await pub.channels.get("plain:pub").publish("a", {"x": 1})
    several = await pub.channels.get("plain:pub").publish(
        [Message(name="b", data=b"\x00\x01"), {"name": "c", "data": "text"}]
    )
    assert len(several) == 2 and one < several[0] < several[1]
    got = [await everything.get(5) for _ in range(3)]
    assert [(m.name, m.data, m.serial, m.client_id) for m in got] == [
        ("a", {"x": 1}, one, "alice"),
        ("b", b"\x00\x01", several[0], "alice"),
        ("c", "text", several[1], "alice"),
    ]
    assert [m.serial for m in named] == [several[0]]


async def test_history_pages_until_attach_and_directions(make_client: MakeClient) -> None:
    client = await make_client("alice")
    channel = client.channels.get("plain:history")
    serials = [(await channel.publish("n", str(i)))[0] for i in range(5)]
    await channel.attach()
    await channel.publish("after", "not in untilAttach history")
    page = await channel.history(until_attach=True, limit=2)
    assert [m.data for m in page.items] == ["4", "3"] and page.has_next()
    older = await page.next()
    assert older is not None and [m.data for m in older.items] == ["2", "1"]
    forwards = await channel.history(direction="forwards", limit=10)
    assert [m.serial for m in forwards.items][:5] == serials
    assert forwards.items[-1].name == "after" and not forwards.has_next()


async def test_mutations_return_version_serials(make_client: MakeClient) -> None:
    client = await make_client("alice")
    watcher = await make_client("bob")
    channel = client.channels.get("ai:mutations")
    seen = watcher.channels.get("ai:mutations").subscribe()
    await watcher.channels.get("ai:mutations").attach()
    [serial] = await channel.publish("stream", "Hel")
    v1 = await channel.append_message(serial, "lo")
    v2 = await channel.update_message(serial, data="Hello!", description="fix")
    v3 = await channel.delete_message(serial)
    assert serial < v1 < v2 < v3
    events = [await seen.get(5) for _ in range(4)]
    assert [(e.action, e.data, e.version_serial) for e in events] == [
        (MessageAction.CREATE, "Hel", serial),
        (MessageAction.APPEND, "lo", v1),
        (MessageAction.UPDATE, "Hello!", v2),
        (MessageAction.DELETE, events[3].data, v3),
    ]
    latest = await channel.get_message(serial)
    assert latest.action == MessageAction.DELETE and latest.version_serial == v3
    versions = await channel.get_message_versions(serial)
    assert len(versions.items) >= 3


async def test_errors_carry_the_ably_code(make_client: MakeClient, relay: Relay) -> None:
    base = f"http://127.0.0.1:{relay.port}"
    details = await request_token(base, relay.default_key, capability={"only:this": ["subscribe"]})
    client = await make_client(token_details=details)
    with pytest.raises(AblyError) as refused:
        await client.channels.get("only:this").publish("x", "y")
    assert refused.value.code == 40160 and refused.value.status == 401
    with pytest.raises(AblyError) as bad:
        await make_client("x", key="app1.key1:wrong")
    assert bad.value.code == 40101


async def test_presence_enter_update_leave_get_subscribe(make_client: MakeClient) -> None:
    alice = await make_client("alice")
    bob = await make_client("bob")
    watched = bob.channels.get("plain:presence")
    events = watched.presence.subscribe()
    await watched.attach()
    channel = alice.channels.get("plain:presence")
    await channel.presence.enter({"status": "here"})
    await channel.presence.update("busy")
    got = [await events.get(5) for _ in range(2)]
    assert [(e.action, e.client_id, e.data) for e in got] == [
        (PresenceAction.ENTER, "alice", {"status": "here"}),
        (PresenceAction.UPDATE, "alice", "busy"),
    ]
    members = await watched.presence.get()
    assert [(m.client_id, m.data) for m in members] == [("alice", "busy")]
    late = await make_client("carol")
    late_members = await late.channels.get("plain:presence").presence.get()
    assert [(m.client_id, m.data) for m in late_members] == [("alice", "busy")]
    await channel.presence.leave()
    left = await events.get(5)
    assert left.action == PresenceAction.LEAVE and await watched.presence.get() == []


async def test_resume_resends_unacked_publishes_once(make_client: MakeClient, relay: Relay) -> None:
    pub = await make_client("alice")
    sub = await make_client("bob")
    channel = sub.channels.get("plain:resume")
    received = channel.subscribe()
    await channel.attach()
    connection_id = pub.connection.id
    publishes = [
        asyncio.ensure_future(pub.channels.get("plain:resume").publish("n", str(i)))
        for i in range(5)
    ]
    await asyncio.sleep(0)  # the frames are written, the ACKs are not read yet
    abort_socket(relay, pub)
    serials = [(await p)[0] for p in publishes]
    assert pub.connection.id == connection_id  # resumed, not a new connection
    got = [await received.get(5) for _ in range(5)]
    assert [m.data for m in got] == [str(i) for i in range(5)]
    assert [m.serial for m in got] == serials
    await pub.channels.get("plain:resume").publish("n", "last")
    assert (await received.get(5)).data == "last"  # nothing duplicated in between


async def test_reattach_replays_what_a_dropped_subscriber_missed(
    make_client: MakeClient, relay: Relay
) -> None:
    pub = await make_client("alice")
    sub = await make_client("bob")
    channel = sub.channels.get("plain:replay")
    received = channel.subscribe(raise_on_gap=True)
    await channel.attach()
    await pub.channels.get("plain:replay").publish("n", "before")
    assert (await received.get(5)).data == "before"
    abort_socket(relay, sub)
    for i in range(3):
        await pub.channels.get("plain:replay").publish("n", f"missed-{i}")
    got = [(await received.get(10)).data for _ in range(3)]
    assert got == ["missed-0", "missed-1", "missed-2"]
    assert sub.connection.state == ConnectionState.CONNECTED


async def test_reattach_without_resumed_reports_lost_continuity(
    make_client: MakeClient, relay: Relay
) -> None:
    sub = await make_client("bob")
    channel = sub.channels.get("plain:gap")
    received = channel.subscribe(raise_on_gap=True)
    lost: list[ContinuityLostError] = []
    channel.on("continuity_lost", lost.append)
    await channel.attach()
    # A resume point the relay cannot honour (a foreign log): the re-attach is not RESUMED.
    channel.channel_serial = "0000000000zz-0000000000000001"
    abort_socket(relay, sub)
    with pytest.raises(ContinuityLostError):
        await received.get(10)
    assert lost and isinstance(lost[0], ContinuityLostError)


async def test_auth_callback_renews_short_lived_tokens(
    make_client: MakeClient, relay: Relay
) -> None:
    base = f"http://127.0.0.1:{relay.port}"
    issued: list[dict] = []

    async def callback() -> dict:
        details = await request_token(base, relay.default_key, ttl=1500, client_id="alice")
        issued.append(details)
        return details

    client = await make_client("alice", auth_callback=callback)
    connection_id = client.connection.id
    channel = client.channels.get("plain:tokens")
    await channel.attach()
    await asyncio.sleep(2.5)
    assert len(issued) >= 2  # renewed before (or on) expiry
    assert await channel.publish("n", "still allowed")
    assert client.connection.state == ConnectionState.CONNECTED
    assert client.connection.id == connection_id


@pytest.mark.filterwarnings("ignore:The HMAC key")  # the test key's secret is short
async def test_jwt_callback_renews_and_resumes(make_client: MakeClient, relay: Relay) -> None:
    key_name, _, secret = relay.default_key.partition(":")
    minted: list[str] = []

    def callback() -> str:
        now = int(time.time())
        claims = {
            "iat": now,
            "exp": now + 2,
            "x-ably-capability": json.dumps({"*": ["*"]}),
            "x-ably-clientId": "jay",
        }
        token = jwt.encode(claims, secret, algorithm="HS256", headers={"kid": key_name})
        minted.append(token)
        return token

    client = await make_client("jay", auth_callback=callback)
    await asyncio.sleep(3)
    assert len(minted) >= 2
    assert await client.channels.get("plain:jwt").publish("n", "ok")
    assert client.client_id == "jay"


async def test_expired_fixed_token_without_renewal_fails(
    make_client: MakeClient, relay: Relay
) -> None:
    base = f"http://127.0.0.1:{relay.port}"
    details = await request_token(base, relay.default_key, ttl=1000)
    client = await make_client(token=details["token"])
    for _ in range(50):
        if client.connection.state == ConnectionState.FAILED:
            break
        await asyncio.sleep(0.1)
    assert client.connection.state == ConnectionState.FAILED
    assert client.connection.error is not None and 40140 <= client.connection.error.code < 40150


async def test_heartbeat_ping_round_trip(make_client: MakeClient) -> None:
    client = await make_client("alice")
    assert await client.connection.ping() < 5
