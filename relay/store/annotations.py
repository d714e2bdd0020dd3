"""Annotations of messages, beside the message log (channel_relay.store.side).

An annotation's serial sorts after everything the channel had delivered when it was published
and before anything published after: "<channel serial at publish>~<number>", the number growing
across the whole table, so serials also grow among annotations of one channel position.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import msgpack

from channel_relay.store.side import SideDatabase

__all__ = ["AnnotationStore"]

_pack = msgpack.Packer(use_bin_type=True).pack

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


def _unpack(body: bytes) -> dict[str, Any]:
    return dict(msgpack.unpackb(body, raw=False))


class AnnotationStore:
    def __init__(self, path: str) -> None:
        self._db = SideDatabase(path, ANNOTATION_SCHEMA, "relay-annotations")

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    async def append(
        self, app_id: str, channel: str, position: str, annotations: list[dict[str, Any]]
    ) -> dict[str, list[dict[str, Any]]]:
        """Store `annotations` (one transaction), giving each its serial after `position`
        (the channel serial they follow). Returns, for each message annotated, all of its
        annotations oldest first (what its summary is made of)."""

        def append(db: sqlite3.Connection) -> dict[str, list[dict[str, Any]]]:
            for annotation in annotations:
                cursor = db.execute(
                    "INSERT INTO annotations (app_id, channel, message_serial, serial, body) "
                    "VALUES (?, ?, ?, '', x'')",
                    (app_id, channel, annotation["messageSerial"]),
                )
                annotation["serial"] = f"{position}~{cursor.lastrowid:016d}"
                db.execute(
                    "UPDATE annotations SET serial = ?, body = ? WHERE id = ?",
                    (annotation["serial"], _pack(annotation), cursor.lastrowid),
                )
            return {
                serial: [
                    _unpack(row[0])
                    for row in db.execute(
                        "SELECT body FROM annotations WHERE app_id = ? AND channel = ? "
                        "AND message_serial = ? ORDER BY id",
                        (app_id, channel, serial),
                    )
                ]
                for serial in dict.fromkeys(a["messageSerial"] for a in annotations)
            }

        return await self._db.transaction(append)

    async def of_messages(
        self, app_id: str, channel: str, message_serials: list[str]
    ) -> dict[str, list[dict[str, Any]]]:
        """The annotations of each of `message_serials` that has any, oldest first."""
        if not message_serials:
            return {}
        marks = ", ".join("?" * len(message_serials))
        rows = await self._db.read(
            "SELECT message_serial, body FROM annotations WHERE app_id = ? AND channel = ? "
            f"AND message_serial IN ({marks}) ORDER BY id",
            (app_id, channel, *message_serials),
        )
        out: dict[str, list[dict[str, Any]]] = {}
        for serial, body in rows:
            out.setdefault(serial, []).append(_unpack(body))
        return out

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
