"""The relay's authority over credentials: the keys it knows, the nonces it has seen and the
revocations in force. Realtime and REST share one, so a token revoked through REST stops a
live connection too.

Nonces and revocations live in the store, so they survive a restart and every node on one
engine shares them: a nonce is claimed in the store, and the revocations in force are cached in
memory (verification never awaits) from the store. On PostgreSQL a revocation's commit notifies
every node, which reads it at once (`catch_up_revocations`, called by the cluster feed), so a
token revoked through one node stops working on all of them together.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from channel_relay.auth.capability import Capability
from channel_relay.auth.credentials import (
    authenticate,
    decode_client_id_header,
    message_client_id,
    parse_authorization,
)
from channel_relay.auth.identity import Identity
from channel_relay.auth.keys import KeyLookup
from channel_relay.auth.revocation import RevocationRegistry
from channel_relay.auth.tokens import TokenDetails, issue_token, request_token
from channel_relay.protocol.errors import AblyError
from channel_relay.store.outage import OutageLog

if TYPE_CHECKING:
    from channel_relay.store.base import Store

__all__ = ["Authenticator", "now_ms", "stamp_client_ids"]

log = logging.getLogger(__name__)
_outage = OutageLog(log, "reading revocations")
# Between attempts to read revocations another node committed, while the engine fails.
_RETRY_SECONDS = 1.0


def now_ms() -> int:
    return int(time.time() * 1000)


class Authenticator:
    def __init__(self, lookup: KeyLookup, store: Store) -> None:
        self.lookup = lookup
        self.store = store
        self.revocations = RevocationRegistry()
        # Called when revocations come into force, so live connections using them are dropped.
        self.on_revoked: Callable[[], None] | None = None
        self._revocations_seen = 0
        self._catching_up = False
        self._revocations_stale = False
        # One read at a time, so the last id seen only grows.
        self._reading = asyncio.Lock()

    async def start(self) -> None:
        """Load the revocations in force."""
        await self.refresh_revocations()

    async def refresh_revocations(self) -> bool:
        """Apply revocations committed since the last look; whether there were any."""
        async with self._reading:
            rows = await self.store.revocations(self._revocations_seen)
            if not rows:
                return False
            self._revocations_seen = rows[-1][0]
            self.revocations.apply((r for _, r in rows), now_ms())
            return True

    async def catch_up_revocations(self) -> None:
        """Put in force the revocations another node committed, dropping the connections they
        revoke. A read that fails is tried again until one succeeds: the notification that
        asked for it does not come twice, and a missed revocation leaves its tokens working."""
        self._revocations_stale = True
        if self._catching_up:
            return  # the read under way goes round again
        self._catching_up = True
        try:
            while self._revocations_stale:
                self._revocations_stale = False
                try:
                    changed = await self.refresh_revocations()
                except Exception as exc:
                    _outage.failed(exc)
                    self._revocations_stale = True
                    await asyncio.sleep(_RETRY_SECONDS)
                    continue
                _outage.succeeded()
                if changed and self.on_revoked is not None:
                    self.on_revoked()
        finally:
            self._catching_up = False

    def key(self, key: str, client_id: str | None = None) -> Identity:
        return authenticate(key, "key", self.lookup, client_id=client_id, now_ms=now_ms())

    def token(self, token: str, client_id: str | None = None) -> Identity:
        return authenticate(
            token,
            "token",
            self.lookup,
            client_id=client_id,
            now_ms=now_ms(),
            revocations=self.revocations,
        )

    def connect_params(self, query: Mapping[str, str]) -> Identity:
        """The identity of a realtime connection from its URL: `key`, or `access_token`
        (ably-js) / `accessToken` (ably-python), and an optional `clientId`."""
        client_id = query.get("clientId")
        key = query.get("key")
        if key:
            try:
                return self.key(key, client_id)
            except AblyError as error:
                if error.code == 40400:
                    # Over REST Ably says 40400 for a key name it does not know; a realtime
                    # connection is refused with 40101 instead (ably-js invalid_cred_failure).
                    raise AblyError(40101, 401, error.message) from None
                raise
        token = query.get("access_token") or query.get("accessToken")
        if token:
            return self.token(token, client_id)
        raise AblyError.no_credentials("No authentication credentials given")

    def request_headers(
        self, authorization: str | None, client_id_header: str | None, key_param: str | None
    ) -> Identity:
        """The identity of a REST request: Basic or Bearer, or a `key` query parameter."""
        client_id = None if client_id_header is None else decode_client_id_header(client_id_header)
        if authorization:
            kind, credential = parse_authorization(authorization)
            if kind == "key":
                return self.key(credential, client_id)
            return self.token(credential, client_id)
        if key_param:
            return self.key(key_param, client_id)
        raise AblyError.unauthorized("No authentication credentials given")

    async def request_token(
        self, key_name: str, body: Mapping[str, Any], caller: Identity | None
    ) -> TokenDetails:
        """`POST /keys/{keyName}/requestToken`: a signed TokenRequest needs no other
        credentials; plain TokenParams need Basic auth with that very key."""
        if "mac" in body:
            return await request_token(
                body, self.lookup, now_ms=now_ms(), nonces=self.store, key_name=key_name
            )
        key = self.lookup(key_name)
        if key is None or caller is None or caller.key_name != key_name or caller.method != "basic":
            raise AblyError(40101, 401, "A token request must be signed, or made with its key")
        capability = body.get("capability")
        ttl = body.get("ttl")
        client_id = body.get("clientId")
        if ttl is not None and not isinstance(ttl, int):
            raise AblyError.invalid_param("ttl must be an integer")
        if client_id is not None and not isinstance(client_id, str):
            raise AblyError.invalid_client_id("clientId must be a string")
        return issue_token(
            key,
            now_ms=now_ms(),
            ttl=ttl,
            capability=None if capability is None else Capability.parse(capability),
            client_id=client_id,
        )

    async def revoke(
        self, key_name: str, caller: Identity, targets: Sequence[object], body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """`POST /keys/{keyName}/revokeTokens`, allowed only to Basic auth with that key.
        Answered once the revocations are committed, and in force on this node."""
        if caller.method != "basic" or caller.key_name != key_name:
            raise AblyError(40162, 401, "Revoking tokens requires Basic auth with that key")
        issued_before = body.get("issuedBefore")
        now = now_ms()
        result, revocations = self.revocations.plan(
            key_name,
            targets,
            now_ms=now,
            issued_before=issued_before if isinstance(issued_before, int) else None,
            allow_reauth_margin=bool(body.get("allowReauthMargin")),
        )
        if revocations:
            try:
                await self.store.add_revocations(revocations, now - self.revocations.retention_ms)
            except Exception as exc:
                raise AblyError.internal(f"Revocations could not be stored: {exc}") from exc
            self.revocations.apply(revocations, now)
        return result


def stamp_client_ids(identity: Identity, messages: list[dict[str, Any]]) -> None:
    """Put the clientId Ably's rules allow on each message (40012 for one the caller may not
    use): a verified clientId cannot be spoofed."""
    for message in messages:
        client_id = message_client_id(identity, message.get("clientId"))
        if client_id is None:
            message.pop("clientId", None)
        else:
            message["clientId"] = client_id
