"""JSON text exactly as JavaScript's `JSON.stringify` writes it, so what the Python client puts on
the wire is byte-identical with what @ably/ai-transport (through ably-js) puts there.

Where Python's `json.dumps` differs and this does not:
- numbers print as JS numbers do: integral floats without a fraction (`1.0` -> `1`), `-0` -> `0`,
  exponents as JS writes them (`1e-7`, `1e+21`, but `0.00001` and `123456789012345680000`), NaN
  and infinities as `null`; an int beyond 2**53 prints as the double JS would hold;
- object keys that are array indices ("0", "12") come first in ascending order, as JS objects
  order them; the other keys keep their insertion order;
- a lone surrogate is escaped (`\\ud800`) rather than written raw; no other non-ASCII is escaped.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

__all__ = ["dumps", "number"]

_MAX_SAFE = 2**53
_MAX_INDEX = 2**32 - 2
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_INDEX_KEY = re.compile(r"0|[1-9][0-9]*")


def number(value: int | float) -> str:
    """The text of a JS Number (ECMAScript Number::toString)."""
    if isinstance(value, int) and abs(value) <= _MAX_SAFE:
        return str(value)
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        return "null"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    # repr gives the shortest round-trip digits; only the layout differs from JS.
    mantissa, _, exp = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    # value = 0.DIGITS x 10**point once leading zeros are gone
    point = len(whole) + (int(exp) if exp else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= point <= 21:
        text = digits + "0" * (point - k)
    elif 0 < point <= 21:
        text = f"{digits[:point]}.{digits[point:]}"
    elif -6 < point <= 0:
        text = "0." + "0" * -point + digits
    else:
        e = point - 1
        tail = f".{digits[1:]}" if k > 1 else ""
        text = f"{digits[0]}{tail}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + text


def _string(value: str) -> str:
    text = json.dumps(value, ensure_ascii=False)
    if _LONE_SURROGATE.search(text):
        text = _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text


def _is_index(key: str) -> bool:
    return _INDEX_KEY.fullmatch(key) is not None and int(key) <= _MAX_INDEX


def _write(value: Any, out: list[str]) -> None:
    if value is None or value is True or value is False:
        out.append("null" if value is None else "true" if value else "false")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, int | float):
        out.append(number(value))
    elif isinstance(value, dict):
        keys = [str(k) for k in value]
        indices = sorted((k for k in keys if _is_index(k)), key=int)
        ordered = indices + [k for k in keys if not _is_index(k)]
        items = {str(k): v for k, v in value.items()}
        out.append("{")
        first = True
        for key in ordered:
            if not first:
                out.append(",")
            first = False
            out.append(_string(key))
            out.append(":")
            _write(items[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: Any) -> str:
    """`JSON.stringify(value)` for JSON-shaped Python values (dict, list, str, int, float,
    bool, None). Unlike JS, a dict value of None is kept (as null): Python has no undefined."""
    out: list[str] = []
    _write(value, out)
    return "".join(out)
