"""Fixture files: channels' logs (messages with their serials and versions, presence history),
and optionally apps and keys, out of a store and back into one as they were.

The format is JSON Lines, one object per line, documented in docs/fixtures.md: a header line
{"format": "channel-relay-fixture", "version": 1, ...}, then per app (with keys only) an "app"
line, and per channel a "channel" line followed by its "message", "version" and "presence"
lines in seq order. Message bodies are Ably's wire dicts as the store keeps them (binary data
as base64 with "base64" in `encoding`, as on Ably's JSON wire).
"""

from __future__ import annotations

import fnmatch
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from channel_relay.auth.capability import Capability
from channel_relay.auth.keys import ApiKey
from channel_relay.protocol.codec import from_json_data, to_json_data
from channel_relay.protocol.errors import AblyError
from channel_relay.protocol.serials import format_serial, new_epoch
from channel_relay.store.base import (
    DEFAULT_KEY_SETTING,
    HistoryQuery,
    Store,
    StoredMessage,
    StoredVersion,
)

__all__ = [
    "FORMAT",
    "VERSION",
    "FixtureError",
    "FixtureSummary",
    "export_fixture",
    "import_fixture",
]

FORMAT = "channel-relay-fixture"
VERSION = 1
# Rows read from the store, or written to it, at a time.
_BATCH = 500

Progress = Callable[[int], None]


class FixtureError(Exception):
    """A fixture file that cannot be read; the message names the line."""


@dataclass(slots=True)
class FixtureSummary:
    apps: int = 0
    channels: int = 0
    messages: int = 0
    versions: int = 0
    presence: int = 0
    names: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.channels} channel(s), {self.messages} message(s), {self.versions} "
            f"version(s), {self.presence} presence event(s), {self.apps} app(s) with keys"
        )


async def export_fixture(
    store: Store,
    out: IO[str],
    *,
    app: str | None = None,
    channels: str | None = None,
    keys: bool = False,
    progress: Progress | None = None,
) -> FixtureSummary:
    """Write the channels of `app` (all apps when None) whose names match the glob `channels`
    (all when None), and with `keys` their apps' keys; `progress(1)` after each channel."""
    summary = FixtureSummary()
    selected = [
        (cid, app_id, name)
        for cid, app_id, name in await store.channel_list()
        if app in (None, app_id) and (channels is None or fnmatch.fnmatchcase(name, channels))
    ]
    header: dict[str, Any] = {"format": FORMAT, "version": VERSION, "exportedAt": _now()}
    if keys:
        header["defaultKey"] = await store.get_setting(DEFAULT_KEY_SETTING)
    _write(out, header)
    if keys:
        specs = dict(await store.apps())
        by_app: dict[str, list[ApiKey]] = {}
        for key in await store.keys():
            if app in (None, key.app_id):
                by_app.setdefault(key.app_id, []).append(key)
        for app_id, app_keys in sorted(by_app.items()):
            spec = specs.get(app_id)
            _write(
                out,
                {
                    "type": "app",
                    "appId": app_id,
                    "spec": json.loads(spec) if spec else None,
                    "keys": [
                        {"key": str(k), "capability": k.capability.to_json()} for k in app_keys
                    ],
                },
            )
            summary.apps += 1
    for _, app_id, name in sorted(selected, key=lambda row: (row[1], row[2])):
        await _export_channel(store, out, app_id, name, summary)
        if progress is not None:
            progress(1)
    return summary


async def _export_channel(
    store: Store, out: IO[str], app_id: str, name: str, summary: FixtureSummary
) -> None:
    log = await store.find_channel(app_id, name)
    if log is None:
        return
    _write(
        out,
        {
            "type": "channel",
            "appId": app_id,
            "name": name,
            "epoch": log.epoch,
            "lastSeq": log.last_seq,
            "firstSeq": log.first_seq,
        },
    )
    summary.channels += 1
    summary.names.append(name)
    cid = log.channel_id
    for kind, read in (("message", store.history), ("presence", store.presence_history)):
        after = 0
        while True:
            rows = await read(HistoryQuery(cid, _BATCH, forwards=True, min_seq=after + 1))
            for row in rows:
                _write(out, {"type": kind, "seq": row.seq, "message": to_json_data(row.message)})
            if kind == "message":
                summary.messages += len(rows)
            else:
                summary.presence += len(rows)
            if len(rows) < _BATCH:
                break
            after = rows[-1].seq
    after = 0
    while True:
        versions = await store.version_rows(cid, after, _BATCH)
        for version in versions:
            _write(
                out,
                {
                    "type": "version",
                    "seq": version.seq,
                    "targetSeq": version.target_seq,
                    "message": to_json_data(version.message),
                },
            )
        summary.versions += len(versions)
        if len(versions) < _BATCH:
            break
        after = versions[-1].seq


async def import_fixture(
    store: Store,
    lines: Iterable[str],
    *,
    into_app: str | None = None,
    progress: Progress | None = None,
) -> FixtureSummary:
    """Load a fixture: each channel replaces the channel of that name (same epoch and seqs, so
    the same serials); apps' keys are added. With `into_app`, every channel goes to that app
    and the file's apps and keys are left out. `progress(n)` after each n characters read."""
    summary = FixtureSummary()
    rows = _Rows(store, summary)
    default_key: str | None = None
    for number, entry in _entries(lines, progress):
        kind = entry.get("type")
        try:
            if number == 1:
                default_key = _check_header(entry)
            elif kind == "channel":
                await rows.flush()
                app_id = into_app or str(entry["appId"])
                epoch = str(entry.get("epoch") or new_epoch())
                cid = await store.replace_channel(
                    app_id,
                    str(entry["name"]),
                    epoch,
                    int(entry["lastSeq"]),
                    int(entry.get("firstSeq", 1)),
                )
                rows.start(cid, str(entry["name"]), epoch)
            elif kind == "app":
                if into_app is None:
                    await _import_app(store, entry)
                    summary.apps += 1
            elif kind in ("message", "version", "presence"):
                await rows.add(kind, entry)
            else:
                raise FixtureError(f"unknown type {kind!r}")
        except (KeyError, TypeError, ValueError, AblyError) as exc:
            raise FixtureError(f"line {number}: {exc!r} in a {kind} line") from None
        except FixtureError as exc:
            raise FixtureError(f"line {number}: {exc}") from None
    await rows.flush()
    if default_key and into_app is None and await store.get_setting(DEFAULT_KEY_SETTING) is None:
        await store.set_setting(DEFAULT_KEY_SETTING, default_key)
    return summary


class _Rows:
    """The rows of the channel being read, written in batches."""

    def __init__(self, store: Store, summary: FixtureSummary) -> None:
        self.store = store
        self.summary = summary
        self.channel_id: int | None = None
        self.epoch = ""
        self.messages: list[StoredMessage] = []
        self.versions: list[StoredVersion] = []
        self.presence: list[StoredMessage] = []

    def start(self, channel_id: int, name: str, epoch: str) -> None:
        self.channel_id = channel_id
        self.epoch = epoch
        self.summary.channels += 1
        self.summary.names.append(name)

    async def add(self, kind: str, entry: dict[str, Any]) -> None:
        if self.channel_id is None:
            raise FixtureError(f"a {kind} line before any channel line")
        message = _from_json(entry["message"])
        seq = int(entry["seq"])
        # What a hand-written fixture may leave out.
        message.setdefault("timestamp", _now())
        if kind == "message":
            message.setdefault("serial", format_serial(self.epoch, seq))
            self.messages.append(StoredMessage(seq, message))
        elif kind == "presence":
            self.presence.append(StoredMessage(seq, message))
        else:
            self.versions.append(StoredVersion(seq, int(entry["targetSeq"]), message))
        if len(self.messages) + len(self.versions) + len(self.presence) >= _BATCH:
            await self.flush()

    async def flush(self) -> None:
        if self.channel_id is None:
            return
        if self.messages or self.versions or self.presence:
            await self.store.add_log_rows(
                self.channel_id, self.messages, self.versions, self.presence
            )
        self.summary.messages += len(self.messages)
        self.summary.versions += len(self.versions)
        self.summary.presence += len(self.presence)
        self.messages, self.versions, self.presence = [], [], []


async def _import_app(store: Store, entry: dict[str, Any]) -> None:
    app_id = str(entry["appId"])
    keys = []
    for item in entry.get("keys") or []:
        key = ApiKey.parse(item["key"], Capability.parse(item.get("capability") or '{"*":["*"]}'))
        if key.app_id != app_id:
            raise FixtureError(f"key {key.name} is not a key of app {app_id}")
        keys.append(key)
    spec = entry.get("spec")
    if spec is not None:
        await store.add_app(app_id, json.dumps(spec), keys)
    else:
        await store.add_keys(keys)


def _check_header(entry: dict[str, Any]) -> str | None:
    if entry.get("format") != FORMAT:
        raise FixtureError(f"not a fixture file (the first line's format is not {FORMAT!r})")
    if entry.get("version") != VERSION:
        raise FixtureError(f"version {entry.get('version')!r}; this relay reads {VERSION}")
    default = entry.get("defaultKey")
    return default if isinstance(default, str) else None


def _entries(lines: Iterable[str], progress: Progress | None) -> Iterator[tuple[int, dict]]:
    for number, line in enumerate(lines, start=1):
        if progress is not None:
            progress(len(line))
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as exc:
            raise FixtureError(f"line {number}: not JSON ({exc})") from None
        if not isinstance(entry, dict):
            raise FixtureError(f"line {number}: not a JSON object")
        yield number, entry


def _from_json(message: Any) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise FixtureError("a message must be an object")
    item = dict(message)
    from_json_data(item)
    return item


def _write(out: IO[str], entry: dict[str, Any]) -> None:
    out.write(json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n")


def _now() -> int:
    return int(time.time() * 1000)
