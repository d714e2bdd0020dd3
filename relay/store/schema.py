"""The SQLite schema, applied idempotently at open."""

from __future__ import annotations

import sqlite3

__all__ = ["SCHEMA", "apply_schema"]

# Messages are kept in the order they were committed (rowid), found by the narrow
# (channel_id, seq) index: a commit's rows land together at the end of the table instead of on a
# page of every channel it touches, which is what a commit writes (clustered by channel, the
# bytes written per publish grew with the channels a commit touched; so does each index, a page
# per channel per commit, hence only the one). A history page is an index range scan plus a
# lookup per row. The message body is msgpack of the wire dict (str and bytes data kept apart),
# and for a message that was updated or appended to, it is the latest aggregate (what history
# and late joiners get). Timestamps are non-decreasing within a channel, so start/end bounds
# filter along the seq index.
# folded_seq NULL: the body is the message's latest aggregate. Otherwise the body is its aggregate
# as of the version numbered folded_seq, and the appends logged in `versions` after it are the
# rest of it (channel_relay.store.appends): a streamed message's row is not rewritten per append.
SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS keys (
    key_name TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    secret TEXT NOT NULL,
    capability TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS channels (
    id INTEGER PRIMARY KEY,
    app_id TEXT NOT NULL,
    name TEXT NOT NULL,
    epoch TEXT NOT NULL,
    last_seq INTEGER NOT NULL DEFAULT 0,
    UNIQUE (app_id, name)
);

CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    channel_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    body BLOB NOT NULL,
    folded_seq INTEGER
);

CREATE UNIQUE INDEX IF NOT EXISTS messages_by_seq ON messages (channel_id, seq);

-- No index by timestamp (messages_by_time, dropped): it cost every commit a page per channel
-- it touched. Timestamps never decrease along seq, so history pages filter time bounds along
-- the seq index, and retention finds its cutoff by a binary search over it (SqliteStore).
DROP INDEX IF EXISTS messages_by_time;

-- Each update, delete or append of a message: its own seq in the channel (the version serial),
-- the seq of the message it changes, and the operation as subscribers received it. The row for
-- seq = target_seq is the message as first published, kept once it starts changing. In commit
-- order like messages, found through one narrow index by seq: a token stream logs a row per
-- append, and each index costs a commit a page per channel it touches (clustered by channel,
-- a page of wide rows). A message's versions are the rows of its channel from its own seq on
-- with its target_seq; there is no index by message (versions_by_message, dropped below): at
-- 10,000 streamed appends a second it was a ninth of the writer's work, and reading a message's
-- versions scans only the changes made on its channel since the message was published.
CREATE TABLE IF NOT EXISTS versions (
    id INTEGER PRIMARY KEY,
    channel_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    target_seq INTEGER NOT NULL,
    body BLOB NOT NULL
);

CREATE UNIQUE INDEX IF NOT EXISTS versions_by_seq ON versions (channel_id, seq);

DROP INDEX IF EXISTS versions_by_message;

-- Presence events (enter, update, leave), numbered per channel apart from messages: they are
-- presence history, and tell which connection had members on a channel before a restart.
CREATE TABLE IF NOT EXISTS presence (
    channel_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    connection_id TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (channel_id, seq)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS presence_by_connection ON presence (channel_id, connection_id, seq);

-- Apps provisioned through the sandbox (POST /apps): the spec they were created from (keys,
-- namespace rules, fixtures), so their rules are applied again at every start. Their keys are
-- rows of `keys` like any other.
CREATE TABLE IF NOT EXISTS apps (
    app_id TEXT PRIMARY KEY,
    spec TEXT NOT NULL
) WITHOUT ROWID;

-- Stats of an app by minute (sandbox fixtures, POST /stats): the interval's start (ms) and its
-- entries as a JSON object of "messages.inbound.all.messages.count"-style names.
CREATE TABLE IF NOT EXISTS stats (
    app_id TEXT NOT NULL,
    interval_start INTEGER NOT NULL,
    entries TEXT NOT NULL,
    PRIMARY KEY (app_id, interval_start)
) WITHOUT ROWID;

-- Keyed by the id first: ids a realtime connection generates ("<connectionId>:<msgSerial>:<i>")
-- are stored next to each other, not on a page of every channel a commit touches. Removing a
-- channel's ids (replacing the channel, deleting an app's data) reads the whole table.
CREATE TABLE IF NOT EXISTS idempotency (
    message_id TEXT NOT NULL,
    channel_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (message_id, channel_id)
) WITHOUT ROWID;

-- Retention (channel_relay.retention): every event of the channel with seq <= trimmed_seq has been
-- removed (and nothing above it). A resume from an older channelSerial is refused (80006).
-- The channel's last_seq is never lowered by it: serials keep growing.
-- TokenRequest nonces seen (a replay is refused with 40105) until their request's timestamp leaves
-- the accepted window (`expires`, ms): after that the timestamp check refuses it by itself.
CREATE TABLE IF NOT EXISTS nonces (
    key_name TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires INTEGER NOT NULL,
    PRIMARY KEY (key_name, nonce)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS nonces_by_expiry ON nonces (expires);

-- Token revocations (revokeTokens) in force, in the order they were made: every node loads
-- them at start and picks up the ones made since (by id, never reused: AUTOINCREMENT).
CREATE TABLE IF NOT EXISTS revocations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    issued_before INTEGER NOT NULL,
    applies_at INTEGER NOT NULL
);

-- Relay nodes writing to this database, and when each last said it is alive (ms): a node whose
-- heartbeat is old is gone, and its connections' state ages from that moment.
CREATE TABLE IF NOT EXISTS nodes (
    node_id TEXT PRIMARY KEY,
    heartbeat INTEGER NOT NULL
) WITHOUT ROWID;

-- Realtime connections that can be resumed, on whichever node: the node serving it, a hash of
-- its current connection key, and when its socket went away (NULL while its node serves it).
-- A resume within connectionStateTtl of that moment (or of its node's last heartbeat, if the
-- node died) keeps the connectionId; the publishes it resends are found by their message ids.
CREATE TABLE IF NOT EXISTS connections (
    connection_id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    node_id TEXT NOT NULL,
    dropped_at INTEGER
) WITHOUT ROWID;

-- The members present on each channel now, as their latest enter/update left them (a leave
-- deletes the row), with the node that serves the member's connection: any node loading the
-- channel knows them, and a member whose node died is announced as leaving by another node.
CREATE TABLE IF NOT EXISTS presence_members (
    channel_id INTEGER NOT NULL,
    member_key TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (channel_id, member_key)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS presence_members_by_node ON presence_members (node_id);

-- Restores (channel_relay.backup): the events of a channel after after_seq up to upto_seq were
-- lost when an older backup was put in place (numbering carried on after upto_seq). A resume from
-- a channelSerial in that range is refused (80006): that client saw what the log no longer has.
CREATE TABLE IF NOT EXISTS restored (
    channel_id INTEGER NOT NULL,
    after_seq INTEGER NOT NULL,
    upto_seq INTEGER NOT NULL,
    PRIMARY KEY (channel_id, after_seq)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS trimmed (
    channel_id INTEGER PRIMARY KEY,
    trimmed_seq INTEGER NOT NULL
);
"""


# Tables whose layout changed, and what their CREATE statement read before: such a table is
# rebuilt in the current layout when the database is opened.
_REBUILT = {
    "messages": "WITHOUT ROWID",
    "idempotency": "PRIMARY KEY (channel_id, message_id)",
    "versions": "WITHOUT ROWID",
}


def apply_schema(db: sqlite3.Connection) -> None:
    """Create what is missing, and bring a database made by an earlier version up to date."""
    for table, before in _REBUILT.items():
        sql = _definition(db, table)
        if sql is not None and before in " ".join(sql.split()):
            # Set aside (with its indexes dropped, their names are the new table's) to copy.
            indexes = db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
                "AND sql IS NOT NULL",
                (table,),
            ).fetchall()
            db.execute("BEGIN IMMEDIATE")
            db.execute(f"ALTER TABLE {table} RENAME TO {table}_before")
            for (index,) in indexes:
                db.execute(f"DROP INDEX {index}")
            db.execute("COMMIT")
    db.executescript(SCHEMA)
    for table in _REBUILT:
        if _definition(db, f"{table}_before") is not None:
            # (Also finishes a copy a crash interrupted: the old table goes with the last row.)
            new = _columns(db, table)
            kept = [c for c in _columns(db, f"{table}_before") if c in new]
            names = ", ".join(kept)
            db.execute("BEGIN IMMEDIATE")
            db.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {table}_before")
            db.execute(f"DROP TABLE {table}_before")
            db.execute("COMMIT")


def _definition(db: sqlite3.Connection, table: str) -> str | None:
    row = db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    return None if row is None else str(row[0])


def _columns(db: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
