"""What the client commands print: tables and live lines for a person (rich), or one JSON
document per result and one JSON object per live event with `--json`, for scripts."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from channel_relay.client import Message, PresenceMessage

__all__ = ["Output", "message_json", "presence_json"]


class Output:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.console = Console(highlight=False)
        self.errors = Console(stderr=True, highlight=False)

    def json(self, value: Any) -> None:
        """One JSON document on one line of stdout, flushed (a script reads it at once)."""
        sys.stdout.write(json.dumps(value, default=_jsonable, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def note(self, text: str) -> None:
        """A line for the person at the terminal, on stderr so that stdout stays data."""
        self.errors.print(Text(text, style="dim"))

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> None:
        table = Table(title=title or None, title_justify="left")
        for column in columns:
            # Keys, serials and ids are copied from here: wrap them, never cut them.
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(Text(_cell(value)) for value in row))
        self.console.print(table)

    def message(self, message: Message) -> None:
        """One live or historical message: a JSON line, or a line of text."""
        if self.as_json:
            self.json(message_json(message))
            return
        line = Text()
        line.append(_time(message.timestamp) + " ", style="dim")
        line.append(_action(message.action.name) + " ", style="magenta")
        line.append(message.name or "(no name)", style="bold cyan")
        if message.client_id:
            line.append(f" by {message.client_id}", style="green")
        line.append(f" [{message.serial or '-'}]", style="dim")
        line.append(" " + _cell(message.data))
        self.console.print(line)

    def presence(self, event: PresenceMessage) -> None:
        if self.as_json:
            self.json(presence_json(event))
            return
        line = Text()
        line.append(_time(event.timestamp) + " ", style="dim")
        line.append(event.action.name.lower() + " ", style="magenta")
        line.append(event.client_id or "?", style="bold green")
        line.append(f" ({event.connection_id})", style="dim")
        if event.data is not None:
            line.append(" " + _cell(event.data))
        self.console.print(line)


def message_json(message: Message) -> dict[str, Any]:
    out = {
        "id": message.id,
        "name": message.name,
        "data": message.data,
        "clientId": message.client_id,
        "connectionId": message.connection_id,
        "timestamp": message.timestamp,
        "serial": message.serial,
        "action": _action(message.action.name),
        "version": message.version or None,
        "extras": message.extras,
    }
    return {k: v for k, v in out.items() if v is not None}


def presence_json(event: PresenceMessage) -> dict[str, Any]:
    out = {
        "action": event.action.name.lower(),
        "clientId": event.client_id,
        "connectionId": event.connection_id,
        "data": event.data,
        "timestamp": event.timestamp,
    }
    return {k: v for k, v in out.items() if v is not None}


def _action(name: str) -> str:
    """CREATE -> message.create, as Ably names message actions."""
    return "message." + name.lower()


def _time(ms: int | None) -> str:
    if ms is None:
        return "--:--:--.---"
    moment = datetime.fromtimestamp(ms / 1000)
    return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def _cell(value: Any) -> str:
    """A value as one readable cell: strings as they are, JSON compact, binary as its size
    and first bytes in hex."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        head = bytes(value[:16]).hex(" ")
        return f"<{len(value)} bytes: {head}{' ...' if len(value) > 16 else ''}>"
    return json.dumps(value, default=_jsonable, ensure_ascii=False, separators=(",", ":"))


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return {"base64": base64.b64encode(value).decode()}
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")
