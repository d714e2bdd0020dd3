"""The durable push state: devices, channel subscriptions, and the notifications recorded.

Side tables beside the message log (channel_relay.store.side): in the relay's SQLite file, or
in the cluster's PostgreSQL database (channel_relay.store.pg_side), where every node sees the
same registrations. Admin operations are rare, and off the publish path. The SQL here runs on
both engines.
"""

from __future__ import annotations

import json
from typing import Any

from channel_relay.store.side import SideTables

__all__ = ["PUSH_SCHEMA", "PushStore"]

PUSH_SCHEMA = """
CREATE TABLE IF NOT EXISTS push_devices (
    app_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    client_id TEXT,
    token TEXT,
    body TEXT NOT NULL,
    PRIMARY KEY (app_id, device_id)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS push_devices_by_client ON push_devices (app_id, client_id);
CREATE INDEX IF NOT EXISTS push_devices_by_token ON push_devices (app_id, token);

-- A subscription names a device or a clientId (the other is ''), never both.
CREATE TABLE IF NOT EXISTS push_subscriptions (
    app_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    device_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    PRIMARY KEY (app_id, channel, device_id, client_id)
) WITHOUT ROWID;

-- Every notification a push service would have been asked to deliver, per device.
CREATE TABLE IF NOT EXISTS push_notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    client_id TEXT,
    timestamp INTEGER NOT NULL,
    body TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS push_notifications_by_device
    ON push_notifications (app_id, device_id, id);
"""


class PushStore:
    """Push tables in `tables` (PUSH_SCHEMA on SQLite; channel_relay.store.pg_schema)."""

    def __init__(self, tables: SideTables) -> None:
        self._db = tables

    async def open(self) -> None:
        await self._db.open()

    async def close(self) -> None:
        await self._db.close()

    async def _write(self, statements: list[tuple[str, tuple[Any, ...]]]) -> int:
        return await self._db.write(statements)

    async def _read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return await self._db.read(sql, params)

    # Devices

    async def save_device(self, app_id: str, device: dict[str, Any], token: str | None) -> None:
        """Insert or replace a device; `token` None keeps the identity token it had."""
        await self._write(
            [
                (
                    "INSERT INTO push_devices (app_id, device_id, client_id, token, body) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (app_id, device_id) DO UPDATE SET "
                    "client_id = excluded.client_id, body = excluded.body, "
                    "token = coalesce(excluded.token, push_devices.token)",
                    (app_id, device["id"], device.get("clientId"), token, json.dumps(device)),
                )
            ]
        )

    async def device(self, app_id: str, device_id: str) -> tuple[dict[str, Any], str | None] | None:
        """A device and its identity token."""
        rows = await self._read(
            "SELECT body, token FROM push_devices WHERE app_id = ? AND device_id = ?",
            (app_id, device_id),
        )
        return (json.loads(rows[0][0]), rows[0][1]) if rows else None

    async def device_by_token(self, app_id: str, token: str) -> dict[str, Any] | None:
        """The device that was given identity token `token` at registration."""
        rows = await self._read(
            "SELECT body FROM push_devices WHERE app_id = ? AND token = ?", (app_id, token)
        )
        return json.loads(rows[0][0]) if rows else None

    async def devices(
        self, app_id: str, *, device_id: str | None = None, client_id: str | None = None
    ) -> list[dict[str, Any]]:
        """The app's devices, filtered by id or clientId, in id order."""
        where, params = _filters(app_id, device_id=device_id, client_id=client_id)
        rows = await self._read(
            f"SELECT body FROM push_devices WHERE {where} ORDER BY device_id", params
        )
        return [json.loads(row[0]) for row in rows]

    async def remove_devices(
        self, app_id: str, *, device_id: str | None = None, client_id: str | None = None
    ) -> int:
        """Remove devices (and their subscriptions); how many devices went."""
        where, params = _filters(app_id, device_id=device_id, client_id=client_id)
        ids = f"SELECT device_id FROM push_devices WHERE {where}"
        return await self._write(
            [
                (
                    "DELETE FROM push_subscriptions WHERE app_id = ? AND device_id != '' "
                    f"AND device_id IN ({ids})",
                    (app_id, *params),
                ),
                (f"DELETE FROM push_devices WHERE {where}", params),
            ]
        )

    # Channel subscriptions

    async def subscribe(self, app_id: str, channel: str, device_id: str, client_id: str) -> None:
        await self._write(
            [
                (
                    "INSERT INTO push_subscriptions (app_id, channel, device_id, client_id) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (app_id, channel, device_id, client_id),
                )
            ]
        )

    async def subscriptions(
        self,
        app_id: str,
        *,
        channel: str | None = None,
        device_id: str | None = None,
        client_id: str | None = None,
        any_of: bool = False,
    ) -> list[tuple[str, str, str]]:
        """(channel, deviceId, clientId) of matching subscriptions ('' for the one not set).
        The device and clientId filters must both match, or either with `any_of`."""
        clauses, params = ["app_id = ?"], [app_id]
        if channel is not None:
            clauses.append("channel = ?")
            params.append(channel)
        who = []
        for column, value in (("device_id", device_id), ("client_id", client_id)):
            if value is not None:
                who.append(f"{column} = ?")
                params.append(value)
        if who:
            clauses.append("(" + (" OR " if any_of else " AND ").join(who) + ")")
        rows = await self._read(
            "SELECT channel, device_id, client_id FROM push_subscriptions WHERE "
            + " AND ".join(clauses)
            + " ORDER BY channel, device_id, client_id",
            tuple(params),
        )
        return [(row[0], row[1], row[2]) for row in rows]

    async def unsubscribe(
        self,
        app_id: str,
        *,
        channel: str | None = None,
        device_id: str | None = None,
        client_id: str | None = None,
    ) -> int:
        clauses, params = ["app_id = ?"], [app_id]
        for column, value in (
            ("channel", channel),
            ("device_id", device_id),
            ("client_id", client_id),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        return await self._write(
            [(f"DELETE FROM push_subscriptions WHERE {' AND '.join(clauses)}", tuple(params))]
        )

    async def channels(self, app_id: str) -> list[str]:
        rows = await self._read(
            "SELECT DISTINCT channel FROM push_subscriptions WHERE app_id = ? ORDER BY channel",
            (app_id,),
        )
        return [row[0] for row in rows]

    # Notifications

    async def record(
        self, app_id: str, records: list[tuple[str, str | None, int, dict[str, Any]]]
    ) -> None:
        """Keep notifications: (deviceId, clientId, timestamp, body) each."""
        await self._write(
            [
                (
                    "INSERT INTO push_notifications "
                    "(app_id, device_id, client_id, timestamp, body) VALUES (?, ?, ?, ?, ?)",
                    (app_id, device_id, client_id, timestamp, json.dumps(body)),
                )
                for device_id, client_id, timestamp, body in records
            ]
        )

    async def notifications(
        self, app_id: str, *, device_id: str | None = None, client_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Recorded notifications, oldest first."""
        where, params = _filters(app_id, device_id=device_id, client_id=client_id)
        rows = await self._read(
            f"SELECT body FROM push_notifications WHERE {where} ORDER BY id", params
        )
        return [json.loads(row[0]) for row in rows]

    async def delete_app(self, app_id: str) -> None:
        await self._write(
            [
                (f"DELETE FROM {table} WHERE app_id = ?", (app_id,))
                for table in ("push_devices", "push_subscriptions", "push_notifications")
            ]
        )


def _filters(
    app_id: str, *, device_id: str | None, client_id: str | None
) -> tuple[str, tuple[Any, ...]]:
    clauses, params = ["app_id = ?"], [app_id]
    if device_id is not None:
        clauses.append("device_id = ?")
        params.append(device_id)
    if client_id is not None:
        clauses.append("client_id = ?")
        params.append(client_id)
    return " AND ".join(clauses), tuple(params)
