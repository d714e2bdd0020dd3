"""Channel name qualifiers: `[meta]name`, `[?rewind=1]name`, `[filter=<base64>]name` and
`[filter=<base64>?rewind=1]name`, as ably-js builds them (channels.get, channels.getDerived).

A qualified name stands for its base channel (or, for `[meta]`, the channel's metachannel):
params in it apply to the attach, and a filter selects which messages the attachment receives.
Sans-I/O.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from channel_relay.protocol.errors import AblyError
from channel_relay.protocol.validation import check_channel_name

__all__ = ["Qualified", "base_channel", "parse_qualified"]


@dataclass(frozen=True, slots=True)
class Qualified:
    """`name` as sent; `channel` the channel it stands for; `params` its attach params;
    `filter` a JMESPath expression, if any."""

    name: str
    channel: str
    params: dict[str, str] = field(default_factory=dict)
    filter: str | None = None

    @property
    def qualified(self) -> bool:
        return self.name != self.channel


def _invalid(name: str, why: str) -> AblyError:
    return AblyError.invalid_channel_name(f"Invalid channel name {name!r}: {why}")


def parse_qualified(name: object) -> Qualified:
    """The channel a (possibly qualified) name stands for; 40010 for an invalid one."""
    if not isinstance(name, str) or not name.startswith("["):
        plain = check_channel_name(name)
        return Qualified(plain, plain)
    end = name.find("]")
    if end == -1:
        raise _invalid(name, "unterminated qualifier")
    qualifier, base = name[1:end], check_channel_name(name[end + 1 :])
    head, _, query = qualifier.partition("?")
    params = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
    if head == "":
        return Qualified(name, base, params)
    if head == "meta":
        return Qualified(name, f"[meta]{base}", params)
    if head.startswith("filter="):
        encoded = head.removeprefix("filter=")
        try:
            expression = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise _invalid(name, "the filter is not base64 of UTF-8 text") from None
        if not expression:
            raise _invalid(name, "empty filter")
        return Qualified(name, base, params, expression)
    raise _invalid(name, f"unknown qualifier {head!r}")


def base_channel(name: object) -> str:
    """`parse_qualified(name).channel`, without building a Qualified for a plain name: every
    publish asks, and a frozen dataclass costs more to build than the check itself."""
    if isinstance(name, str) and not name.startswith("["):
        return check_channel_name(name)
    return parse_qualified(name).channel
