"""The relay's authority over credentials: the keys it knows, the nonces it has seen and the
revocations in force. Realtime and REST share one, so a token revoked through REST stops a
live connection too."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

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
from channel_relay.auth.tokens import NonceRegistry, TokenDetails, issue_token, request_token
from channel_relay.protocol.errors import AblyError

__all__ = ["Authenticator", "now_ms", "stamp_client_ids"]


def now_ms() -> int:
    return int(time.time() * 1000)


class Authenticator:
    def __init__(self, lookup: KeyLookup) -> None:
        self.lookup = lookup
        self.nonces = NonceRegistry()
        self.revocations = RevocationRegistry()

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
            return self.key(key, client_id)
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

    def request_token(
        self, key_name: str, body: Mapping[str, Any], caller: Identity | None
    ) -> TokenDetails:
        """`POST /keys/{keyName}/requestToken`: a signed TokenRequest needs no other
        credentials; plain TokenParams need Basic auth with that very key."""
        if "mac" in body:
            return request_token(
                body, self.lookup, now_ms=now_ms(), nonces=self.nonces, key_name=key_name
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

    def revoke(
        self, key_name: str, caller: Identity, targets: Sequence[object], body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """`POST /keys/{keyName}/revokeTokens`, allowed only to Basic auth with that key."""
        if caller.method != "basic" or caller.key_name != key_name:
            raise AblyError(40162, 401, "Revoking tokens requires Basic auth with that key")
        issued_before = body.get("issuedBefore")
        return self.revocations.revoke(
            key_name,
            targets,
            now_ms=now_ms(),
            issued_before=issued_before if isinstance(issued_before, int) else None,
            allow_reauth_margin=bool(body.get("allowReauthMargin")),
        )


def stamp_client_ids(identity: Identity, messages: list[dict[str, Any]]) -> None:
    """Put the clientId Ably's rules allow on each message (40012 for one the caller may not
    use): a verified clientId cannot be spoofed."""
    for message in messages:
        client_id = message_client_id(identity, message.get("clientId"))
        if client_id is None:
            message.pop("clientId", None)
        else:
            message["clientId"] = client_id
