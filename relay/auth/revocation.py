"""Token revocation: ``POST /keys/{keyName}/revokeTokens`` and the check every token passes.

Follows Ably's revocation docs (ably/docs ``auth/revocation.mdx``) and spec RSA17: a target is
``clientId:<id>``, ``revocationKey:<key>`` (a JWT's ``x-ably-revocation-key`` claim) or
``channel:<resource>`` (a resource string exactly as written in the token's capability). Tokens
of that key matching a target and issued at or before ``issuedBefore`` stop working from
``appliesAt`` (now, or 30 s later with ``allowReauthMargin``) with 40141.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from channel_relay.auth.identity import Identity
from channel_relay.protocol.errors import AblyError

__all__ = ["REAUTH_MARGIN_MS", "Revocation", "RevocationRegistry"]

REAUTH_MARGIN_MS = 30_000
"""How long ``allowReauthMargin`` postpones a revocation, so clients can renew first."""

_MAX_TARGETS = 100
_MAX_AGE_MS = 60 * 60 * 1000
_TARGET_TYPES = frozenset({"clientId", "revocationKey", "channel"})

_Entry = tuple[int, int]  # (issued_before, applies_at)


@dataclass(frozen=True, slots=True)
class Revocation:
    """One revoked target of one key: its tokens issued at or before `issued_before` stop
    working at `applies_at` (ms)."""

    key_name: str
    kind: str
    value: str
    issued_before: int
    applies_at: int


class RevocationRegistry:
    """The revocations in force, per key, in memory; consulted by token and JWT verification.

    The store holds them (durable, and shared by every node on one engine); this is the cache
    every verification reads without awaiting, filled from the store (`apply`) only once a
    revocation is committed. An entry is kept for `retention_ms` after it applies (default
    25 h, past the longest native token ttl); a JWT living longer than that outlives its
    revocation.
    """

    def __init__(self, retention_ms: int = 25 * 60 * 60 * 1000) -> None:
        self.retention_ms = retention_ms
        self._entries: dict[tuple[str, str, str], list[_Entry]] = {}

    def plan(
        self,
        key_name: str,
        targets: Sequence[object],
        *,
        now_ms: int,
        issued_before: int | None = None,
        allow_reauth_margin: bool = False,
    ) -> tuple[dict[str, Any], list[Revocation]]:
        """What revoking the tokens of `key_name` matching `targets` means: Ably's BatchResult
        body and the revocations to commit (then `apply`).

        The result is ``{successCount, failureCount, results}`` with, per target, either
        ``{target, issuedBefore, appliesAt}`` or ``{target, error}`` (an unknown target type is
        a 40000/400 failure of that target alone). Raises AblyError 40003/400 when `targets` is
        empty or over 100, or `issued_before` is in the future or more than an hour old.
        The caller must have authenticated with this key itself (Basic, not a token: 40162).
        """
        if not isinstance(targets, Sequence) or isinstance(targets, str) or not targets:
            raise AblyError(40003, 400, "targets must be a non-empty array of strings")
        if len(targets) > _MAX_TARGETS:
            raise AblyError(40003, 400, f"At most {_MAX_TARGETS} targets per request")
        if issued_before is None:
            issued_before = now_ms
        elif isinstance(issued_before, bool) or not isinstance(issued_before, int):
            raise AblyError(40003, 400, "issuedBefore must be a timestamp in ms")
        if issued_before > now_ms or issued_before < now_ms - _MAX_AGE_MS:
            raise AblyError(40003, 400, "issuedBefore must be within the last hour")
        applies_at = now_ms + (REAUTH_MARGIN_MS if allow_reauth_margin else 0)
        results: list[dict[str, Any]] = []
        revocations: list[Revocation] = []
        for target in targets:
            kind, sep, value = target.partition(":") if isinstance(target, str) else ("", "", "")
            if not sep or kind not in _TARGET_TYPES or not value:
                error = AblyError(40000, 400, f"Invalid revocation target {target!r}")
                results.append({"target": target, "error": error.to_dict()})
                continue
            revocations.append(Revocation(key_name, kind, value, issued_before, applies_at))
            results.append(
                {"target": target, "issuedBefore": issued_before, "appliesAt": applies_at}
            )
        failures = sum(1 for r in results if "error" in r)
        body = {
            "successCount": len(results) - failures,
            "failureCount": failures,
            "results": results,
        }
        return body, revocations

    def apply(self, revocations: Iterable[Revocation], now_ms: int) -> None:
        """Put committed revocations in force (those past retention are dropped)."""
        self._prune(now_ms)
        horizon = now_ms - self.retention_ms
        for r in revocations:
            if r.applies_at >= horizon:
                entries = self._entries.setdefault((r.key_name, r.kind, r.value), [])
                if (r.issued_before, r.applies_at) not in entries:
                    entries.append((r.issued_before, r.applies_at))

    def is_revoked(self, identity: Identity, now_ms: int) -> bool:
        """Whether a token identity is revoked at `now_ms` (keys are never revoked here)."""
        if identity.method != "token" or identity.issued is None or not self._entries:
            return False
        issued = identity.issued
        for target in self._targets(identity):
            for issued_before, applies_at in self._entries.get(target, ()):
                if issued <= issued_before and now_ms >= applies_at:
                    return True
        return False

    def next_in_force(self, now_ms: int) -> int | None:
        """When the next revocation not yet in force at `now_ms` comes into force, if any."""
        later = [
            applies_at
            for entries in self._entries.values()
            for _, applies_at in entries
            if applies_at > now_ms
        ]
        return min(later, default=None)

    def check(self, identity: Identity, now_ms: int) -> None:
        """AblyError 40141/401 if `identity` is revoked."""
        if self.is_revoked(identity, now_ms):
            raise AblyError(40141, 401, "Token revoked")

    def _targets(self, identity: Identity) -> Iterable[tuple[str, str, str]]:
        key = identity.key_name
        if identity.client_id is not None:
            yield (key, "clientId", identity.client_id)
        if identity.revocation_key is not None:
            yield (key, "revocationKey", identity.revocation_key)
        for resource in identity.capability.grants:
            yield (key, "channel", resource)

    def _prune(self, now_ms: int) -> None:
        horizon = now_ms - self.retention_ms
        for target in list(self._entries):
            kept = [e for e in self._entries[target] if e[1] >= horizon]
            if kept:
                self._entries[target] = kept
            else:
                del self._entries[target]
