"""REST routes: time, publish and history. Each handler decodes, authorizes, calls the channel
layer and encodes; errors become Ably's envelope in the middleware."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

from aiohttp import web

from channel_relay.auth.authenticator import Authenticator, stamp_client_ids
from channel_relay.auth.identity import Identity
from channel_relay.auth.permissions import may_change_some
from channel_relay.channels.channel import Channel, PublishDone
from channel_relay.channels.enumeration import ChannelListParams, read_channels
from channel_relay.channels.history import (
    HistoryPage,
    HistoryParams,
    link_header,
    read_page,
    read_presence_page,
    read_versions,
)
from channel_relay.channels.occupancy import named_status
from channel_relay.channels.presence import member_key
from channel_relay.channels.registry import ChannelRegistry
from channel_relay.config import Settings
from channel_relay.protocol.actions import PresenceAction
from channel_relay.protocol.codec import from_json_data
from channel_relay.protocol.errors import AblyError
from channel_relay.protocol.serials import parse_serial
from channel_relay.protocol.validation import (
    MUTATIONS,
    check_channel_name,
    check_plain,
    parse_messages,
    parse_mutation,
)
from channel_relay.rest.negotiate import read_body, reply

__all__ = ["RestApi", "path_channel_name"]

# ably-js 2.28 speaks API version 6; the batch publish shape changed at version 3.
_CURRENT_API_VERSION = 6


class RestApi:
    def __init__(
        self,
        settings: Settings,
        channels: ChannelRegistry,
        authenticator: Authenticator,
        on_revoked: Callable[[], None],
        connection_id_for_key: Callable[[str, str], str | None],
    ) -> None:
        self.settings = settings
        self.channels = channels
        self.auth = authenticator
        # Called after a revocation, so live connections using revoked tokens are dropped.
        self.on_revoked = on_revoked
        # (appId, connectionKey) -> the realtime connection a publish is made on behalf of.
        self.connection_id_for_key = connection_id_for_key

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/time", self.time),
            web.post("/messages", self.batch_publish),
            web.get("/presence", self.batch_presence),
            web.post("/keys/{key_name}/requestToken", self.request_token),
            web.post("/keys/{key_name}/revokeTokens", self.revoke_tokens),
            web.get("/channels", self.channel_list),
            web.post("/channels/{name:[\\s\\S]+}/messages", self.publish),
            web.get("/channels/{name:[\\s\\S]+}/messages", self.history),
            web.get("/channels/{name:[\\s\\S]+}/presence", self.presence),
            web.get("/channels/{name:[\\s\\S]+}/presence/history", self.presence_history),
            web.patch("/channels/{name:[\\s\\S]+}/messages/{serial}", self.change),
            web.get("/channels/{name:[\\s\\S]+}/messages/{serial}", self.message),
            web.get("/channels/{name:[\\s\\S]+}/messages/{serial}/versions", self.versions),
            web.get("/channels/{name:[\\s\\S]+}", self.status),
        ]

    async def time(self, request: web.Request) -> web.Response:
        return reply(request, [int(time.time() * 1000)])

    async def request_token(self, request: web.Request) -> web.Response:
        body = await read_body(request, self.settings.max_frame_size)
        if not isinstance(body, dict):
            raise AblyError(40001, 400, "Expected a TokenRequest or TokenParams object")
        _check_plain_body(body)
        caller = None
        if "mac" not in body:
            caller = self._identify(request)
        details = await self.auth.request_token(request.match_info["key_name"], body, caller)
        return reply(request, details.to_dict())

    async def revoke_tokens(self, request: web.Request) -> web.Response:
        caller = self._identify(request)
        body = await read_body(request, self.settings.max_frame_size)
        if not isinstance(body, dict):
            raise AblyError(40001, 400, "Expected {targets: [...]}")
        _check_plain_body(body)
        result = await self.auth.revoke(
            request.match_info["key_name"], caller, body.get("targets") or [], body
        )
        self.on_revoked()
        return reply(request, result, status=201)

    async def publish(self, request: web.Request) -> web.Response:
        identity, name = self._authorised(request, "publish")
        body = await read_body(request, self.settings.max_frame_size)
        if request.query.get("_forceNack") == "true":
            # Ably's test hook for the refused-publish path (ably-python test_publish_params).
            raise AblyError(40099, 400, "Publish refused as requested by _forceNack")
        # Looked up once the body is in, right before publishing (no await in between): a
        # slow body never holds a channel that could meanwhile be unloaded.
        channel = await self.channels.get(identity.app_id, name)
        ephemeral = request.query.get("ephemeral") == "true"
        return reply(request, await self._publish(identity, channel, body, ephemeral), status=201)

    async def _publish(
        self, identity: Identity, channel: Channel, raw: Any, ephemeral: bool = False
    ) -> dict[str, Any]:
        """Validate, publish and await durability: Ably's {channel, messageId, serials}.
        `ephemeral` (the `ephemeral=true` publish param) delivers the messages live without
        storing them, as `extras.ephemeral` does for each message."""
        messages = parse_messages(raw, self.settings.max_message_size)
        stamp_client_ids(identity, messages)
        self._on_behalf(identity, raw, messages)
        if ephemeral:
            for message in messages:
                message.setdefault("extras", {})["ephemeral"] = True
        future = _completion()
        channel.publish(messages, _settle(future), id_base=secrets.token_urlsafe(12))
        serials = await future
        first_id = messages[0]["id"]
        message_id = first_id.rpartition(":")[0] or first_id
        return {"channel": channel.name, "messageId": message_id, "serials": serials}

    def _on_behalf(self, identity: Identity, raw: Any, messages: list[dict[str, Any]]) -> None:
        """A message with a `connectionKey` is published on behalf of that realtime connection
        of the same app: it carries that connection's id (40006, as on Ably, for a key of no
        live one)."""
        items = raw if isinstance(raw, list) else [raw]
        for item, message in zip(items, messages, strict=True):
            key = item.get("connectionKey")
            if key is None:
                continue
            connection_id = (
                self.connection_id_for_key(identity.app_id, key) if isinstance(key, str) else None
            )
            if connection_id is None:
                raise AblyError(40006, 400, "Invalid connectionKey: no such live connection")
            message["connectionId"] = connection_id

    async def change(self, request: web.Request) -> web.Response:
        """PATCH a message: update, delete or append (the action is in the body)."""
        identity, name = self._authorised(request, None)
        body = await read_body(request, self.settings.max_frame_size)
        if isinstance(body, list) and len(body) == 1:
            body = body[0]
        if not isinstance(body, dict) or body.get("action") not in MUTATIONS:
            raise AblyError.invalid_message("Expected one message with an update, delete or append")
        body["serial"] = request.match_info["serial"]
        op = parse_mutation(body, self.settings.max_message_size)
        may_change_some(identity, name, op["action"])
        channel = await self.channels.find(identity.app_id, name)
        if channel is None:
            raise AblyError.not_found(f"No message with serial {op['serial']!r}")
        future = _completion()
        channel.mutate(
            op,
            _settle(future),
            identity=identity,
            channel_name=channel.name,
            max_size=self.settings.max_message_size,
        )
        serials = await future
        return reply(request, {"versionSerial": serials[0]})

    async def message(self, request: web.Request) -> web.Response:
        """The latest version of one message."""
        channel = await self._existing(request, "history")
        seq = _message_seq(channel, request.match_info["serial"])
        message = await channel.message(seq)
        if message is None:
            raise AblyError.not_found("Message not found")
        [message] = await self._with_summaries(channel.app_id, channel.name, [message])
        return reply(request, message)

    async def versions(self, request: web.Request) -> web.Response:
        """Every recorded version of one message, oldest (the original) first unless
        direction=backwards, as Ably answers."""
        channel = await self._existing(request, "history")
        seq = _message_seq(channel, request.match_info["serial"])
        params = HistoryParams.parse(request.query, direction="forwards")
        page = await read_versions(channel, seq, params)
        if not page.messages:
            raise AblyError.not_found("Message not found")
        return reply(request, page.messages, headers={"Link": page.links("versions")})

    async def history(self, request: web.Request) -> web.Response:
        identity, name = self._authorised(request, "history")
        params = HistoryParams.parse(request.query)
        channel = await self.channels.find(identity.app_id, name)
        page = (
            HistoryPage([], params, None) if channel is None else await read_page(channel, params)
        )
        messages = await self._with_summaries(identity.app_id, name, page.messages)
        return reply(request, messages, headers={"Link": page.links("messages")})

    async def _with_summaries(
        self, app_id: str, name: str, messages: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        annotations = self.channels.annotations
        if annotations is None or not messages:
            return messages
        return await annotations.with_summaries(app_id, name, messages)

    async def batch_publish(self, request: web.Request) -> web.Response:
        """POST /messages: one BatchPublishSpec {channels, messages} or an array of them; one
        BatchResult per spec, each channel succeeding or failing on its own.

        Clients of API version 1 or 2 (X-Ably-Version) get the shape of those versions instead:
        the per-channel outcomes themselves (a flat array for one spec), and when any failed,
        400 with error 40020 and the outcomes as its `batchResponse`.
        """
        identity = self._identify(request)
        body = await read_body(request, self.settings.max_frame_size)
        specs = body if isinstance(body, list) else [body]
        per_spec: list[list[dict[str, Any]]] = []
        for spec in specs:
            if not isinstance(spec, dict):
                raise AblyError(40020, 400, "Each batch spec must be an object")
            channels = spec.get("channels")
            names = [channels] if isinstance(channels, str) else channels
            if not isinstance(names, list) or not names:
                raise AblyError(40020, 400, "A batch spec needs channels")
            raw = spec.get("messages")
            items = raw if isinstance(raw, list) else [raw]
            for item in items:
                if isinstance(item, dict):
                    from_json_data(item)
            per_spec.append([await self._publish_one(identity, name, items) for name in names])
        if _api_version(request) >= 3:
            return reply(request, [_batch_result(o) for o in per_spec], status=201)
        legacy = per_spec if isinstance(body, list) else per_spec[0]
        if any("error" in outcome for outcomes in per_spec for outcome in outcomes):
            error = AblyError(40020, 400, "Batched request partially failed")
            return reply(request, {"error": error.to_dict(), "batchResponse": legacy}, status=400)
        return reply(request, legacy, status=201)

    async def _publish_one(self, identity: Identity, name: Any, items: list[Any]) -> dict[str, Any]:
        try:
            channel_name = check_channel_name(name)
            if not identity.capability.allows(channel_name, "publish"):
                raise AblyError.forbidden(f"Operation publish not permitted on {channel_name}")
            channel = await self.channels.get(identity.app_id, channel_name)
            return await self._publish(identity, channel, items)
        except AblyError as error:
            return {"channel": name, "error": error.to_dict()}

    async def batch_presence(self, request: web.Request) -> web.Response:
        """GET /presence?channels=a,b: the current members of several channels at once."""
        identity = self._identify(request)
        names = [n for n in request.query.get("channels", "").split(",") if n]
        if not names:
            raise AblyError.invalid_param("channels is required")
        outcomes = []
        for name in names:
            try:
                check_channel_name(name)
                if not identity.capability.allows(name, "subscribe"):
                    raise AblyError.forbidden(f"Presence not permitted on channel {name}")
                channel = await self.channels.find(identity.app_id, name)
            except AblyError as error:
                outcomes.append({"channel": name, "error": error.to_dict()})
                continue
            current = {} if channel is None else channel.presence.members
            members = sorted(current.values(), key=member_key)
            presence = [{**m, "action": PresenceAction.PRESENT} for m in members]
            outcomes.append({"channel": name, "presence": presence})
        return reply(request, _batch_result(outcomes))

    async def presence(self, request: web.Request) -> web.Response:
        """The channel's current members (filters: clientId, connectionId; limit)."""
        identity, name = self._authorised(request, "subscribe")
        channel = await self.channels.find(identity.app_id, name)
        current = {} if channel is None else channel.presence.members
        query = request.query
        params = HistoryParams.parse(
            {"limit": query.get("limit", "100"), "cursor": query.get("cursor", "")}
        )
        offset = params.cursor or 0
        members = sorted(
            (
                {**m, "action": PresenceAction.PRESENT}
                for m in current.values()
                if query.get("clientId") in (None, m["clientId"])
                and query.get("connectionId") in (None, m["connectionId"])
            ),
            key=member_key,
        )
        page = members[offset : offset + params.limit]
        links = [("first", {**query, "cursor": "0"}), ("current", {**query, "cursor": str(offset)})]
        if offset + params.limit < len(members):
            links.append(("next", {**query, "cursor": str(offset + params.limit)}))
        return reply(request, page, headers={"Link": link_header("presence", links)})

    async def presence_history(self, request: web.Request) -> web.Response:
        identity, name = self._authorised(request, "history")
        params = HistoryParams.parse(request.query)
        channel = await self.channels.find(identity.app_id, name)
        page = HistoryPage([], params, None)
        if channel is not None:
            page = await read_presence_page(channel, params)
        return reply(request, page.messages, headers={"Link": page.links("history")})

    async def status(self, request: web.Request) -> web.Response:
        """Channel details: its occupancy, and active, as on Ably, where asking about a channel
        activates it; asking creates nothing here."""
        identity, name = self._authorised(request, "channel-metadata")
        channel = await self.channels.find(identity.app_id, name)
        return reply(request, named_status(name, channel))

    async def channel_list(self, request: web.Request) -> web.Response:
        """GET /channels: the app's channels, by name (by=id) or with details (by=value)."""
        identity = self._identify(request)
        if not identity.capability.allows_app_wide("channel-metadata"):
            raise AblyError.forbidden("Channel enumeration is not permitted by this capability")
        params = ChannelListParams.parse(request.query)
        page = await read_channels(self.channels, identity.app_id, params)
        return reply(request, page.items, headers={"Link": page.links()})

    def _authorised(self, request: web.Request, op: str | None) -> tuple[Identity, str]:
        """The caller and the channel named in the path, checking `op` (None: the handler
        checks permissions itself) before anything is looked up."""
        identity = self._identify(request)
        name = check_channel_name(path_channel_name(request))
        if op is not None and not identity.capability.allows(name, op):
            raise AblyError.forbidden(f"Operation {op} not permitted on channel {name}")
        return identity, name

    async def _existing(self, request: web.Request, op: str) -> Channel:
        """The channel named in the path, once `op` is authorised; 40400 when nothing was
        ever written to it."""
        identity, name = self._authorised(request, op)
        channel = await self.channels.find(identity.app_id, name)
        if channel is None:
            raise AblyError.not_found("Message not found")
        return channel

    def _identify(self, request: web.Request) -> Identity:
        return self.auth.request_headers(
            request.headers.get("Authorization"),
            request.headers.get("X-Ably-ClientId"),
            request.query.get("key"),
        )


def _api_version(request: web.Request) -> int:
    """The Ably API version the client speaks (X-Ably-Version); the current one if it says
    none or something unreadable."""
    try:
        return int(request.headers.get("X-Ably-Version", "").partition(".")[0])
    except ValueError:
        return _CURRENT_API_VERSION


def _check_plain_body(body: dict[str, Any]) -> None:
    """A body the auth layer reads field by field must be plain JSON (valid Unicode, finite
    numbers): what it takes from it ends up in tokens and responses."""
    reason = check_plain(body)
    if reason is not None:
        raise AblyError(40001, 400, f"Invalid request body: {reason}")


def _batch_result(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    failures = sum(1 for outcome in outcomes if "error" in outcome)
    return {
        "successCount": len(outcomes) - failures,
        "failureCount": failures,
        "results": outcomes,
    }


def path_channel_name(request: web.Request) -> str:
    """The channel named in a /channels/{name}/... path, decoded once.

    ably-js encodes names with encodeURIComponent (a "+" in a name arrives as %2B) and
    ably-python with quote_plus (a space arrives as "+"), so a raw "+" can only be a space.
    aiohttp's match_info is already percent-decoded and cannot tell the two apart: the name
    is cut from the raw path instead (the rest of the path, a fixed word or a serial, is the
    same raw or decoded).
    """
    decoded = request.match_info["name"]
    prefix = "/channels/"
    suffix_len = len(request.path) - len(prefix) - len(decoded)
    raw = request.raw_path.partition("?")[0][len(prefix) :]
    return unquote_plus(raw[: len(raw) - suffix_len] if suffix_len else raw)


def _completion() -> asyncio.Future[list[str | None]]:
    return asyncio.get_running_loop().create_future()


def _settle(future: asyncio.Future[list[str | None]]) -> PublishDone:
    """A publish callback that resolves `future` with the serials or raises the error."""

    def done(serials: list[str | None] | None, error: AblyError | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(serials or [])

    return done


def _message_seq(channel: Channel, serial: str) -> int:
    parsed = parse_serial(serial)
    if parsed is None or parsed[0] != channel.log.epoch:
        raise AblyError.not_found("Message not found")
    return parsed[1]
