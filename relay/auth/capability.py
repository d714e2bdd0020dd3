"""Ably capabilities: which operations a credential may perform on which channels.

A capability is a JSON object mapping resource patterns to operation lists, for example
``{"chat:*": ["publish", "subscribe"], "[*]*": ["history"]}``. The rules follow Ably's
capability docs (ably/docs ``auth/capabilities.mdx``, "Resource names and wildcards"):

- a ``*`` replaces whole ``:``-separated segments only (``foo*`` is the literal name ``foo*``);
- a ``*`` as the last segment matches one or more remaining segments (``foo:*`` matches
  ``foo:bar`` and ``foo:bar:baz`` but not ``foo``); ``*`` alone matches every channel;
- a qualified resource (``[meta]x``, ``[queue]x``) is matched only by a resource with the same
  qualifier, except ``[*]*``, which matches everything, qualified or not;
- the operation ``*`` grants every operation, and may not be mixed with named ones.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from channel_relay.protocol.errors import AblyError

__all__ = ["ALL", "OPERATIONS", "Capability"]

_OPERATIONS: tuple[str, ...] = (
    "presence",
    "publish",
    "subscribe",
    "history",
    "stats",
    "channel-metadata",
    "push-subscribe",
    "push-admin",
    "privileged-headers",
    "object-subscribe",
    "object-publish",
    "annotation-subscribe",
    "annotation-publish",
    "message-update-own",
    "message-update-any",
    "message-delete-own",
    "message-delete-any",
)

OPERATIONS: frozenset[str] = frozenset(_OPERATIONS)
"""Every operation name a capability may grant (besides the wildcard ``*``)."""

_WILDCARD = "*"
_ANY = (_WILDCARD,)

# Segment tokens of a compiled pattern: a literal string, one segment, or one-or-more segments.
_ONE = object()
_REST = object()
_ANSWERS_KEPT = 4096


def _invalid(message: str) -> AblyError:
    return AblyError(40000, 400, f"Invalid capability: {message}")


@dataclass(frozen=True, slots=True)
class Capability:
    """A parsed capability: resource pattern -> the operations granted on it.

    ``grants`` maps each resource to its operation names in the order they were given (Ably
    answers a token's capability with the operations in the order they were requested), or to
    ``("*",)`` for all operations. Build one with :meth:`parse`; the constructor does not
    validate. An empty capability (``is_empty``) grants nothing; it only arises from
    :meth:`intersect`.
    """

    grants: Mapping[str, tuple[str, ...]]
    # Answers of `allows` by (channel, op): a publisher asks the same question on every publish
    # and a capability never changes (re-authentication brings a new one).
    _answers: dict[tuple[str, str], bool] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def parse(cls, value: str | Mapping[str, Any]) -> Capability:
        """Parse and validate a capability from a JSON string or a mapping.

        Raises AblyError 40000 (status 400) when the JSON is malformed, the value is not a
        non-empty object, a resource is empty, an operation list is empty or not a list of
        strings, an operation is unknown, or ``*`` is mixed with named operations (the cases
        ably-js's rest/capability tests expect a 400 for).
        """
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise _invalid("not valid JSON") from None
        if not isinstance(value, Mapping) or not value:
            raise _invalid("must be a non-empty JSON object")
        grants: dict[str, tuple[str, ...]] = {}
        for resource, ops in value.items():
            if not isinstance(resource, str) or not resource:
                raise _invalid("resource names must be non-empty strings")
            if not isinstance(ops, list) or not ops:
                raise _invalid(f"operations for {resource!r} must be a non-empty list")
            for op in ops:
                if not isinstance(op, str) or (op != _WILDCARD and op not in OPERATIONS):
                    raise _invalid(f"unknown operation {op!r} for {resource!r}")
            granted = tuple(dict.fromkeys(ops))
            if _WILDCARD in granted and len(granted) > 1:
                raise _invalid(f"'*' cannot be combined with other operations for {resource!r}")
            grants[resource] = granted
        return cls(grants)

    @property
    def is_empty(self) -> bool:
        """True when the capability grants nothing at all."""
        return not self.grants

    def to_json(self) -> str:
        """The JSON text: resources sorted, operations in their given order, no spaces."""
        return json.dumps(
            {r: list(self.grants[r]) for r in sorted(self.grants)}, separators=(",", ":")
        )

    def allows(self, channel: str, op: str) -> bool:
        """Whether operation `op` is granted on `channel` by any matching resource.

        A leading params qualifier (``[?rewind=1]name``) is ignored, as it is not part of the
        channel's identity.
        """
        answers = self._answers
        answer = answers.get((channel, op))
        if answer is None:
            name = _strip_params(channel)
            answer = any(
                (op in ops or _WILDCARD in ops) and _matches(resource, name)
                for resource, ops in self.grants.items()
            )
            if len(answers) >= _ANSWERS_KEPT:
                # Bounded whatever names a client tries; the common case is a few channels.
                answers.clear()
            answers[(channel, op)] = answer
        return answer

    def operations(self, channel: str) -> frozenset[str]:
        """Every concrete operation granted on `channel` (``*`` expanded to all operations).

        Useful to compute the channel modes an ATTACH may be granted.
        """
        name = _strip_params(channel)
        granted: set[str] = set()
        for resource, ops in self.grants.items():
            if _matches(resource, name):
                granted.update(OPERATIONS if _WILDCARD in ops else ops)
        return frozenset(granted)

    def allows_app_wide(self, op: str) -> bool:
        """Whether `op` is granted app-wide (``stats``, channel enumeration).

        Ably honours these only on the resource ``*`` or one that contains it, such as ``[*]*``.
        """
        return any(
            (op in ops or _WILDCARD in ops) and resource in ("*", "[*]*")
            for resource, ops in self.grants.items()
        )

    def intersect(self, other: Capability) -> Capability:
        """The capability granting exactly what both grant; may be empty (check ``is_empty``).

        Each pair of overlapping resources yields their common pattern (``chat:*`` and
        ``chat:room1`` give ``chat:room1``) with the common operations in this capability's
        order (``*`` on one side yields the other side's list); results for the same resource
        are merged. This is how Ably derives a token's capability from the requested one
        (``self``) and the key's.
        """
        merged: dict[str, dict[str, None]] = {}
        for ra, opsa in self.grants.items():
            for rb, opsb in other.grants.items():
                resource = _intersect_resources(ra, rb)
                if resource is None:
                    continue
                ops = _intersect_ops(opsa, opsb)
                if ops:
                    merged.setdefault(resource, {}).update(dict.fromkeys(ops))
        return Capability(
            {r: _normalise(_requested_order(ops, self.grants.get(r))) for r, ops in merged.items()}
        )

    def within(self, limit: Capability) -> Capability:
        """The intersection with `limit` (the key's capability); 40160 when it is empty."""
        result = self.intersect(limit)
        if result.is_empty:
            raise AblyError(40160, 401, "Requested capability is not granted by the key")
        return result


def _requested_order(ops: dict[str, None], requested: tuple[str, ...] | None) -> tuple[str, ...]:
    """`ops` in the order the requested capability lists them for the same resource (several
    overlapping pairs may add to one resource, in pair order); the others after, as found."""
    found = list(ops)
    if not requested:
        return tuple(found)
    rank = {op: i for i, op in enumerate(requested)}
    return tuple(sorted(found, key=lambda op: rank.get(op, len(rank) + found.index(op))))


def _normalise(ops: tuple[str, ...]) -> tuple[str, ...]:
    # A merged list that names every operation is still stored as named operations, not "*":
    # a later-added operation must not become granted by accident.
    return _ANY if _WILDCARD in ops else ops


def _intersect_ops(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    if _WILDCARD in a:
        return b
    if _WILDCARD in b:
        return a
    return tuple(op for op in a if op in b)


def _strip_params(channel: str) -> str:
    if channel.startswith("[?"):
        end = channel.find("]")
        if end != -1:
            return channel[end + 1 :]
    return channel


def _split_qualifier(name: str) -> tuple[str | None, str]:
    """("meta", "x") for "[meta]x"; (None, name) for an unqualified name."""
    if name.startswith("["):
        end = name.find("]")
        if end != -1:
            return name[1:end], name[end + 1 :]
    return None, name


def _compile(body: str) -> list[object]:
    segments = body.split(":")
    tokens: list[object] = [_ONE if s == _WILDCARD else s for s in segments]
    if segments[-1] == _WILDCARD:
        tokens[-1] = _REST
    return tokens


# Every publish and attach asks; patterns and names repeat, so remember the answers.
@functools.lru_cache(maxsize=65536)
def _matches(pattern: str, name: str) -> bool:
    if pattern == "[*]*" or pattern == name:
        return True
    pq, pbody = _split_qualifier(pattern)
    nq, nbody = _split_qualifier(name)
    if pq != nq and pq != _WILDCARD:
        return False
    segments = nbody.split(":")
    tokens = _compile(pbody)
    for i, token in enumerate(tokens):
        if token is _REST:
            return len(segments) > i
        if i >= len(segments) or (token is not _ONE and token != segments[i]):
            return False
    return len(segments) == len(tokens)


def _intersect_resources(a: str, b: str) -> str | None:
    """The pattern matching exactly the names both `a` and `b` match, or None if disjoint."""
    if a == b or b == "[*]*":
        return a
    if a == "[*]*":
        return b
    qa, body_a = _split_qualifier(a)
    qb, body_b = _split_qualifier(b)
    if qa == _WILDCARD:
        qualifier = qb
    elif qb == _WILDCARD or qa == qb:
        qualifier = qa
    else:
        return None
    ta, tb = _compile(body_a), _compile(body_b)
    out: list[str] = []
    for i in range(max(len(ta), len(tb))):
        x = ta[i] if i < len(ta) else None
        y = tb[i] if i < len(tb) else None
        if x is None or y is None:
            # One pattern has ended and the other still needs at least one more segment.
            return None
        if x is _REST:
            out.extend(_render(t) for t in tb[i:])
            break
        if y is _REST:
            out.extend(_render(t) for t in ta[i:])
            break
        if x is _ONE:
            out.append(_render(y))
        elif y is _ONE or x == y:
            out.append(_render(x))
        else:
            return None
    # A single-segment wildcard never ends the result (a pattern's last "*" is always _REST),
    # so rendering both kinds of wildcard as "*" is unambiguous.
    body = ":".join(out)
    return body if qualifier is None else f"[{qualifier}]{body}"


def _render(token: object) -> str:
    return _WILDCARD if token is _ONE or token is _REST else str(token)


ALL = Capability({"*": _ANY})
"""The default key capability ``{"*":["*"]}``: every operation on every (unqualified) channel."""
