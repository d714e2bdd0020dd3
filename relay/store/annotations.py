"""Annotations of messages, in side tables beside the message log (channel_relay.store.side).

An annotation's serial sorts after everything the channel had delivered when it was published
and before anything published after: "<channel serial at publish>~<row id>", the id growing
across the whole table, so serials also grow among annotations of one channel position. The id
is also how far a summary goes: the summary made of a message's annotations up to id N is newer
than one up to an id below N (`upto`).

One interface, two engines: `SqliteAnnotations` in the relay's SQLite file (one writer, so
every append sees all earlier ones), and `PgAnnotations` in the cluster's database, where an
append locks the message it annotates in its transaction, so two nodes annotating one message
at once each fold the other's committed rows into the summary, and the commit notifies the
other nodes (channel_relay.channels.cluster) of the rows it added.
"""

from __future__ import annotations

import json
import sqlite3
from abc import ABC, abstractmethod
from typing import Any

import asyncpg
import msgpack

from channel_relay.store.pg_schema import NOTIFY_CHANNEL
from channel_relay.store.pg_side import PgSideTables
from channel_relay.store.side import SideDatabase, SideTables

__all__ = ["ANNOTATION_SCHEMA", "AnnotationStore", "PgAnnotations", "SqliteAnnotations", "upto"]

_pack = msgpack.Packer(use_bin_type=True).pack
# Row ids named per notification: with the channel's name, well under the 8000-byte payload.
_IDS_PER_NOTIFY = 200

ANNOTATION_SCHEMA = """
CREATE TABLE IF NOT EXISTS annotations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    message_serial TEXT NOT NULL,
    serial TEXT NOT NULL,
    body BLOB NOT NULL
);

CREATE INDEX IF NOT EXISTS annotations_by_message
    ON annotations (app_id, channel, message_serial, id);
"""

Annotated = dict[str, list[dict[str, Any]]]
"""Per message serial, its annotations oldest first (what its summary is made of)."""


def _unpack(body: bytes) -> dict[str, Any]:
    return dict(msgpack.unpackb(body, raw=False))


def _serial(position: str, row_id: int) -> str:
    return f"{position}~{row_id:016d}"


def upto(annotations: list[dict[str, Any]]) -> int:
    """The highest row id among stored `annotations` (read from their serials)."""
    return max(int(a["serial"].rpartition("~")[2]) for a in annotations)


class AnnotationStore(ABC):
    """The reads, the same SQL on both engines; `append` is each engine's."""

    def __init__(self, tables: SideTables) -> None:
        self._db = tables

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    @abstractmethod
    async def append(
        self, app_id: str, channel: str, position: str, annotations: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], Annotated]:
        """Store `annotations` (one transaction), each with its serial after `position` (the
        channel serial they follow): them as stored (with their serials), and per message
        annotated, all of its annotations up to them. Nothing of them is kept, and
        `annotations` are unchanged, when it raises."""

    async def of_messages(
        self, app_id: str, channel: str, message_serials: list[str], *, upto: int | None = None
    ) -> Annotated:
        """The annotations of each of `message_serials` that has any, oldest first (those up
        to row `upto` when it is given)."""
        if not message_serials:
            return {}
        marks = ", ".join("?" * len(message_serials))
        below = "" if upto is None else " AND id <= ?"
        rows = await self._db.read(
            "SELECT message_serial, body FROM annotations WHERE app_id = ? AND channel = ? "
            f"AND message_serial IN ({marks}){below} ORDER BY id",
            (app_id, channel, *message_serials, *(() if upto is None else (upto,))),
        )
        out: Annotated = {}
        for serial, body in rows:
            out.setdefault(serial, []).append(_unpack(body))
        return out

    async def committed(
        self, app_id: str, channel: str, ids: list[int]
    ) -> tuple[list[dict[str, Any]], Annotated]:
        """An append another node committed: the annotations in rows `ids`, and per message
        they annotate, its annotations up to the last of them (the summary it made)."""
        marks = ", ".join("?" * len(ids))
        rows = await self._db.read(
            f"SELECT message_serial, body FROM annotations WHERE id IN ({marks}) "
            "AND app_id = ? AND channel = ? ORDER BY id",
            (*ids, app_id, channel),
        )
        added = [_unpack(body) for _, body in rows]
        serials = list(dict.fromkeys(serial for serial, _ in rows))
        return added, await self.of_messages(app_id, channel, serials, upto=max(ids))

    async def page(
        self, app_id: str, channel: str, message_serial: str, offset: int, limit: int
    ) -> list[dict[str, Any]]:
        """A message's annotations, oldest first."""
        rows = await self._db.read(
            "SELECT body FROM annotations WHERE app_id = ? AND channel = ? "
            "AND message_serial = ? ORDER BY id LIMIT ? OFFSET ?",
            (app_id, channel, message_serial, limit, offset),
        )
        return [_unpack(row[0]) for row in rows]

    async def delete_app(self, app_id: str) -> None:
        await self._db.write([("DELETE FROM annotations WHERE app_id = ?", (app_id,))])


class SqliteAnnotations(AnnotationStore):
    """Annotations in the SQLite file at `path`."""

    def __init__(self, path: str) -> None:
        self._sqlite = SideDatabase(path, ANNOTATION_SCHEMA, "relay-annotations")
        super().__init__(self._sqlite)

    async def append(
        self, app_id: str, channel: str, position: str, annotations: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], Annotated]:
        def append(db: sqlite3.Connection) -> tuple[list[dict[str, Any]], Annotated]:
            stored = []
            for annotation in annotations:
                cursor = db.execute(
                    "INSERT INTO annotations (app_id, channel, message_serial, serial, body) "
                    "VALUES (?, ?, ?, '', x'')",
                    (app_id, channel, annotation["messageSerial"]),
                )
                row_id = cursor.lastrowid
                assert row_id is not None
                done = {**annotation, "serial": _serial(position, row_id)}
                db.execute(
                    "UPDATE annotations SET serial = ?, body = ? WHERE id = ?",
                    (done["serial"], _pack(done), row_id),
                )
                stored.append(done)
            return stored, {
                serial: [
                    _unpack(row[0])
                    for row in db.execute(
                        "SELECT body FROM annotations WHERE app_id = ? AND channel = ? "
                        "AND message_serial = ? ORDER BY id",
                        (app_id, channel, serial),
                    )
                ]
                for serial in dict.fromkeys(a["messageSerial"] for a in stored)
            }

        return await self._sqlite.transaction(append)


class PgAnnotations(AnnotationStore):
    """Annotations in the cluster's PostgreSQL database."""

    def __init__(self, tables: PgSideTables) -> None:
        self._pg = tables
        super().__init__(tables)

    async def append(
        self, app_id: str, channel: str, position: str, annotations: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], Annotated]:
        messages = sorted(dict.fromkeys(a["messageSerial"] for a in annotations))

        async def append(conn: asyncpg.Connection) -> tuple[list[dict[str, Any]], Annotated]:
            # The message's lock, taken in serial order (no two appends deadlock): appends to
            # one message commit one after the other, each reading the rows of those before.
            for serial in messages:
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                    f"{app_id}\n{channel}\n{serial}",
                )
            ids = await conn.fetch(
                "SELECT nextval(pg_get_serial_sequence('annotations', 'id')) "
                "FROM generate_series(1, $1)",
                len(annotations),
            )
            stored = [
                {**annotation, "serial": _serial(position, row[0])}
                for annotation, row in zip(annotations, ids, strict=True)
            ]
            await conn.executemany(
                "INSERT INTO annotations (id, app_id, channel, message_serial, serial, body) "
                "VALUES ($1, $2, $3, $4, $5, $6)",
                [
                    (row[0], app_id, channel, a["messageSerial"], a["serial"], _pack(a))
                    for a, row in zip(stored, ids, strict=True)
                ],
            )
            rows = await conn.fetch(
                "SELECT message_serial, body FROM annotations WHERE app_id = $1 AND channel = $2 "
                "AND message_serial = ANY($3::text[]) ORDER BY id",
                app_id,
                channel,
                messages,
            )
            out: Annotated = {}
            for serial, body in rows:
                out.setdefault(serial, []).append(_unpack(body))
            added = [row[0] for row in ids]
            for start in range(0, len(added), _IDS_PER_NOTIFY):
                chunk = added[start : start + _IDS_PER_NOTIFY]
                note = {"node": self._pg.node_id, "annotations": [[app_id, channel, chunk]]}
                await conn.execute(
                    "SELECT pg_notify($1, $2)",
                    NOTIFY_CHANNEL,
                    json.dumps(note, separators=(",", ":")),
                )
            return stored, out

        return await self._pg.transaction(append)
