"""Typed header fields and data codecs: how a custom codec maps event properties to the wire
(the JS `strField`, `boolField`, `jsonField`, `enumField` and `DataCodec` of @ably/ai-transport).

A `HeaderField` binds one codec header key to one property of an event (or of an input's
payload, or of a user-message part): `write` puts the property on the headers when encoding,
`read` gets it back when decoding. The key is both the header name and the property name, so
the two directions cannot drift. Header values are strings: booleans "true"/"false",
structured values JSON text exactly as JS `JSON.stringify` writes it.

A `DataCodec` maps an event to the message `data` and back (`decode` returns the properties
the data contributes, merged into the rebuilt event).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from channel_relay.client.codecs import jsjson

__all__ = [
    "DataCodec",
    "HeaderField",
    "bool_field",
    "enum_field",
    "json_data",
    "json_field",
    "read_fields",
    "str_field",
    "text_data",
    "write_fields",
]


@dataclass(frozen=True, slots=True)
class HeaderField:
    """One codec header bound to the property of the same name. `read(headers)` returns the
    decoded value, or None when absent (a field with a default returns the default);
    `write(headers, value)` sets the header, skipping None and values of the wrong type."""

    key: str
    read: Callable[[dict[str, str]], Any]
    write: Callable[[dict[str, str], Any], None]


def str_field(key: str, default: str | None = None) -> HeaderField:
    """A string header (JS `strField(key, fallback?)`)."""

    def write(headers: dict[str, str], value: Any) -> None:
        if isinstance(value, str):
            headers[key] = value

    return HeaderField(key, lambda headers: headers.get(key, default), write)


def bool_field(key: str, default: bool | None = None) -> HeaderField:
    """A boolean header, "true"/"false" (JS `boolField`): any other text reads as False."""

    def read(headers: dict[str, str]) -> bool | None:
        raw = headers.get(key)
        return default if raw is None else raw == "true"

    def write(headers: dict[str, str], value: Any) -> None:
        if isinstance(value, bool):
            headers[key] = "true" if value else "false"

    return HeaderField(key, read, write)


def json_field(key: str) -> HeaderField:
    """A JSON-valued header (JS `jsonField`): malformed JSON reads as None."""

    def read(headers: dict[str, str]) -> Any:
        raw = headers.get(key)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def write(headers: dict[str, str], value: Any) -> None:
        if value is not None:
            headers[key] = jsjson.dumps(value)

    return HeaderField(key, read, write)


def enum_field(key: str, allowed: Iterable[str], fallback: str) -> HeaderField:
    """A string header from a closed set (JS `enumField`): absent or unknown reads as
    `fallback`."""
    values = frozenset(allowed)

    def read(headers: dict[str, str]) -> str:
        raw = headers.get(key)
        return raw if raw in values else fallback

    def write(headers: dict[str, str], value: Any) -> None:
        if isinstance(value, str):
            headers[key] = value

    return HeaderField(key, read, write)


@dataclass(frozen=True, slots=True)
class DataCodec:
    """The message `data` of an event: `encode(event)` makes it, `decode(data)` returns the
    properties it gives back (JS `DataCodec`)."""

    encode: Callable[[dict[str, Any]], Any]
    decode: Callable[[Any], dict[str, Any]]


def text_data(key: str) -> DataCodec:
    """The data is the string property `key` ("" when absent)."""
    return DataCodec(
        lambda event: event.get(key, ""),
        lambda data: {key: data} if isinstance(data, str) else {},
    )


def json_data(*keys: str) -> DataCodec:
    """The data is an object of the properties `keys` (those present), as an `ai-output` of the
    Vercel codec carries a tool output ({output}) or an error with its input."""
    return DataCodec(
        lambda event: {k: event[k] for k in keys if k in event},
        lambda data: {k: data[k] for k in keys if k in data} if isinstance(data, dict) else {},
    )


def write_fields(
    fields: Iterable[HeaderField], kind: str, source: dict[str, Any]
) -> dict[str, str]:
    """The codec headers of `source`: `kind` first, then each field present on it."""
    headers = {"kind": kind}
    for f in fields:
        f.write(headers, source.get(f.key))
    return headers


def read_fields(fields: Iterable[HeaderField], headers: dict[str, str]) -> dict[str, Any]:
    """The properties the fields read off `headers` (absent ones left out)."""
    out: dict[str, Any] = {}
    for f in fields:
        value = f.read(headers)
        if value is not None:
            out[f.key] = value
    return out
