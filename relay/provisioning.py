"""Apps made at run time, as Ably's sandbox makes them: keys, namespace rules, presence fixtures.

`POST /apps` (relay/rest/sandbox.py) and the pytest plugin (relay/testing/) both come here. An
app spec has the shape of ably-common's test-app-setup.json `post_apps`:

    {"keys": [{}, {"capability": "{\\"*\\": [\\"subscribe\\"]}"}],
     "namespaces": [{"id": "mutable", "mutableMessages": true}, {"id": "persisted", ...}],
     "channels": [{"name": "persisted:fixtures",
                   "presence": [{"clientId": "a", "data": "x", "encoding": "json"}]}]}

A key without a capability may do everything; unknown key and namespace fields (limits,
revocableTokens, ...) are accepted and ignored. Channels outside every namespace
get `default_rules` (no mutable messages, as on Ably, unless the caller says otherwise).
Presence fixture members are entered by the relay itself under one connectionId per app; they
stay until the app is reset or deleted (they are not restored after a restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import string
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from channel_relay.apps import Apps
from channel_relay.auth.capability import ALL, Capability
from channel_relay.auth.keys import ApiKey
from channel_relay.channels.registry import ChannelRegistry
from channel_relay.channels.rules import ChannelRules
from channel_relay.faults import Faults
from channel_relay.protocol.actions import PresenceAction
from channel_relay.protocol.errors import AblyError
from channel_relay.protocol.validation import check_channel_name
from channel_relay.realtime.endpoint import RealtimeEndpoint
from channel_relay.stats import fixture_entries, interval_start
from channel_relay.store.base import Store

__all__ = ["AppSpec", "ProvisionedApp", "Sandbox"]

log = logging.getLogger(__name__)

_ID_ALPHABET = string.ascii_letters + string.digits
_CLOSED = AblyError(40400, 404, "The app was deleted or reset")


def _random_id(length: int) -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def _rules(source: Mapping[str, Any], default: ChannelRules) -> ChannelRules:
    mutable = source.get("mutableMessages", default.mutable_messages)
    persisted = source.get("persisted", default.persisted)
    push = source.get("pushEnabled", default.push_enabled)
    return ChannelRules(
        mutable_messages=bool(mutable), persisted=bool(persisted), push_enabled=bool(push)
    )


@dataclass(frozen=True, slots=True)
class AppSpec:
    """A validated app spec: capabilities of its keys in order, namespaces (as given, with
    their rules), the rules of channels in no namespace, and presence fixtures by channel."""

    capabilities: tuple[Capability, ...]
    namespaces: tuple[dict[str, Any], ...]
    default_rules: ChannelRules
    presence: tuple[tuple[str, tuple[dict[str, Any], ...]], ...] = ()

    @classmethod
    def parse(cls, body: Any, default_rules: ChannelRules | None = None) -> AppSpec:
        """Check a `post_apps` body; AblyError 40000 for what is not of its shape."""
        if not isinstance(body, Mapping):
            raise AblyError(40000, 400, "Expected an app spec object")
        default = default_rules or ChannelRules(
            mutable_messages=False, persisted=False, push_enabled=False
        )
        if isinstance(body.get("defaultRules"), Mapping):  # a relay extension, see README
            default = _rules(body["defaultRules"], default)
        keys = body.get("keys") or [{}]
        capabilities = tuple(_capability(key) for key in _list(keys, "keys"))
        namespaces = []
        for namespace in _list(body.get("namespaces") or [], "namespaces"):
            if not isinstance(namespace, Mapping) or not isinstance(namespace.get("id"), str):
                raise AblyError(40000, 400, "Each namespace needs a string id")
            namespaces.append(dict(namespace))
        presence = []
        for channel in _list(body.get("channels") or [], "channels"):
            if not isinstance(channel, Mapping) or not isinstance(channel.get("name"), str):
                raise AblyError(40000, 400, "Each channel needs a string name")
            name = check_channel_name(channel["name"])
            members = tuple(_member(m) for m in _list(channel.get("presence") or [], "presence"))
            if members:
                presence.append((name, members))
        return cls(capabilities, tuple(namespaces), default, tuple(presence))

    def namespace_rules(self) -> dict[str, ChannelRules]:
        default = ChannelRules(mutable_messages=False, persisted=False, push_enabled=False)
        return {ns["id"]: _rules(ns, default) for ns in self.namespaces}

    def to_json(self) -> str:
        """What the store keeps to apply the rules again at the next start."""
        return json.dumps(
            {
                "namespaces": list(self.namespaces),
                "defaultRules": {
                    "mutableMessages": self.default_rules.mutable_messages,
                    "persisted": self.default_rules.persisted,
                    "pushEnabled": self.default_rules.push_enabled,
                },
                "channels": [
                    {"name": name, "presence": list(members)} for name, members in self.presence
                ],
            }
        )


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise AblyError(40000, 400, f"{what} must be a list")
    return value


def _capability(key: Any) -> Capability:
    if not isinstance(key, Mapping):
        raise AblyError(40000, 400, "Each key must be an object")
    capability = key.get("capability")
    if capability is None:
        return ALL
    if not isinstance(capability, str | Mapping):
        raise AblyError(40000, 400, "A key's capability must be a JSON string or an object")
    return Capability.parse(capability)


def _member(member: Any) -> dict[str, Any]:
    if not isinstance(member, Mapping) or not isinstance(member.get("clientId"), str):
        raise AblyError(40000, 400, "Each presence fixture needs a string clientId")
    event = {k: member[k] for k in ("clientId", "data", "encoding", "extras") if k in member}
    event["action"] = PresenceAction.ENTER
    return event


@dataclass(slots=True)
class ProvisionedApp:
    """An app as `POST /apps` reports it (keys in the order of the spec)."""

    app_id: str
    account_id: str
    keys: list[ApiKey]
    spec: AppSpec
    fixture_connection_id: str = field(default="")

    def to_dict(self, endpoint: str, port: int, tls: bool) -> dict[str, Any]:
        return {
            "appId": self.app_id,
            "accountId": self.account_id,
            "status": 0,
            "keys": [
                {
                    "id": key.key_id,
                    "keyName": key.name,
                    "keySecret": key.secret,
                    # Ably's sandbox also answers the secret as `value`, which ably-python's
                    # test set-up (test/ably/testapp.py) reads.
                    "value": key.secret,
                    "keyStr": str(key),
                    "capability": key.capability.to_json(),
                    "status": 0,
                }
                for key in self.keys
            ],
            "namespaces": [
                {
                    **ns,
                    "persisted": bool(ns.get("persisted", False)),
                    "mutableMessages": bool(ns.get("mutableMessages", False)),
                }
                for ns in self.spec.namespaces
            ],
            "endpoint": endpoint,
            "port": port,
            "tls": tls,
        }


class Sandbox:
    """Creates, resets and deletes apps inside the running relay, and applies test faults."""

    def __init__(
        self,
        store: Store,
        apps: Apps,
        channels: ChannelRegistry,
        realtime: RealtimeEndpoint,
        faults: Faults,
        side_data: Sequence[Callable[[str], Awaitable[None]]] = (),
    ) -> None:
        self.store = store
        # Removers of an app's data kept beside the log (push, annotations, live stats).
        self.side_data = side_data
        self.apps = apps
        self.channels = channels
        self.realtime = realtime
        self.faults = faults
        self._specs: dict[str, AppSpec] = {}

    async def restore(self) -> None:
        """At start: the rules of every app provisioned before (their keys load with the rest)."""
        for app_id, text in await self.store.apps():
            try:
                spec = AppSpec.parse({"keys": [{}], **json.loads(text)})
            except (ValueError, AblyError):
                continue
            self._specs[app_id] = spec
            self.apps.set_rules(app_id, spec.default_rules, spec.namespace_rules())

    def spec(self, app_id: str) -> AppSpec | None:
        return self._specs.get(app_id)

    async def create_app(self, spec: AppSpec) -> ProvisionedApp:
        taken = set(self._specs) | {key.app_id for key in list(self.apps.keys())}
        app_id = _random_id(6)
        while app_id in taken:
            app_id = _random_id(6)
        keys = [ApiKey.generate(app_id, capability) for capability in spec.capabilities]
        self.apps.set_rules(app_id, spec.default_rules, spec.namespace_rules())
        await self.store.add_app(app_id, spec.to_json(), keys)
        self._specs[app_id] = spec
        self.apps.add(keys)
        await self._enter_fixtures(app_id, spec)
        log.info("app %s created with %d key(s)", app_id, len(keys), extra={"app_id": app_id})
        return ProvisionedApp(app_id, f"acct{app_id}", keys, spec, _fixture_connection(app_id))

    async def delete_app(self, app_id: str) -> None:
        """The app, its keys and all its data go; its live connections are closed."""
        self.apps.remove(app_id)
        self._specs.pop(app_id, None)
        await self._clear(app_id, keep_app=False)
        log.info("app %s deleted with its data", app_id, extra={"app_id": app_id})

    async def reset_app(self, app_id: str) -> None:
        """Empty the app (channels, messages, presence, stats, faults; connections closed),
        keeping its keys and rules, with its presence fixtures entered again."""
        await self._clear(app_id, keep_app=True)
        spec = self._specs.get(app_id)
        if spec is not None:
            await self._enter_fixtures(app_id, spec)

    async def add_stats(self, app_id: str, fixtures: Any) -> int:
        """Store stats fixtures (one object or a list, each with an `intervalId` of a minute
        or coarser); returns how many were stored."""
        items = fixtures if isinstance(fixtures, list) else [fixtures]
        rows = []
        for item in items:
            if not isinstance(item, Mapping) or not isinstance(item.get("intervalId"), str):
                raise AblyError(40000, 400, "Each stats fixture needs an intervalId")
            start, _ = interval_start(item["intervalId"])
            rows.append((start, json.dumps(fixture_entries(item))))
        await self.store.add_stats(app_id, rows)
        return len(rows)

    async def drop_connections(
        self,
        app_id: str,
        *,
        connection_id: str | None = None,
        client_id: str | None = None,
        error: AblyError | None = None,
    ) -> list[str]:
        """Drop the app's live sockets matching connection_id and/or client_id: abruptly (as a
        network failure would) or, given `error`, with DISCONNECTED carrying it. Either way the
        SDK reconnects and resumes. Returns the connectionIds dropped."""
        dropped = []
        for connection in list(self.realtime.connections.values()):
            if (
                connection.identity.app_id != app_id
                or connection.ws is None
                or connection.writer is None
                or connection_id not in (None, connection.connection_id)
                or client_id not in (None, connection.identity.client_id)
            ):
                continue
            dropped.append(connection.connection_id)
            if error is not None:
                await connection.disconnect(error)
            else:
                connection.writer.abort()
        return dropped

    async def _clear(self, app_id: str, *, keep_app: bool) -> None:
        self.faults.clear(app_id)
        closing = [
            (cid, c) for cid, c in self.realtime.connections.items() if c.identity.app_id == app_id
        ]
        for cid, connection in closing:
            self.realtime.connections.pop(cid, None)
            with contextlib.suppress(Exception):
                if connection.ws is not None and connection.writer is not None:
                    await connection.fail(_CLOSED)
                else:
                    await connection.close()
        self.channels.forget(app_id)
        await self.store.delete_app_data(app_id, keep_app=keep_app)
        for remove in self.side_data:
            await remove(app_id)

    async def _enter_fixtures(self, app_id: str, spec: AppSpec) -> None:
        connection_id = _fixture_connection(app_id)
        for name, members in spec.presence:
            channel = await self.channels.get(app_id, name)
            loop = asyncio.get_running_loop()
            entered: asyncio.Future[None] = loop.create_future()

            def done(_: Any, error: AblyError | None, entered: asyncio.Future[None] = entered):
                if not entered.done():
                    entered.set_exception(error) if error else entered.set_result(None)

            channel.presence.publish(
                [dict(m) for m in members],
                done,
                connection_id=connection_id,
                id_base=f"{connection_id}:0",
            )
            await entered


def _fixture_connection(app_id: str) -> str:
    """The connectionId the relay enters an app's presence fixtures under."""
    return f"fixtures{app_id}"
