"""Logging for operators: the usual text lines, or one JSON object per line (`--log-format
json`) that log collectors read without parsing rules.

A record's `connection_id` and `channel` (pass them with `extra={...}`) become fields of their
own in JSON, and a `[connection channel]` prefix in text.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

__all__ = ["JsonFormatter", "TextFormatter", "configure"]

_CONTEXT = ("connection_id", "channel", "app_id", "code")


class JsonFormatter(logging.Formatter):
    """{"ts": ISO 8601 UTC, "level", "logger", "msg", then connection_id/channel/app_id/code
    when the record has them, and "exc" with the traceback of an exception}."""

    converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in _CONTEXT:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = [str(getattr(record, n)) for n in _CONTEXT if getattr(record, n, None)]
        return f"{text} [{' '.join(context)}]" if context else text


def configure(level: str = "INFO", fmt: str = "text") -> None:
    """Send the relay's logs to stderr in `fmt` ("text" or "json") at `level`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # aiohttp's access log is off (the relay runs without one); its errors still come through.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
