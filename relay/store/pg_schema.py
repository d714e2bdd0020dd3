"""The PostgreSQL schema: the SQLite one's tables (see schema.py for what each holds) in
PostgreSQL's types, applied idempotently at open under an advisory lock, so nodes starting
together do not race to create it."""

from __future__ import annotations

__all__ = ["CHANNEL_TABLES", "NOTIFY_CHANNEL", "PG_SCHEMA", "SCHEMA_LOCK"]

# The LISTEN/NOTIFY channel every node listens on for commits of the others.
NOTIFY_CHANNEL = "relay_log"
# pg_advisory_xact_lock key taken while the schema is applied.
SCHEMA_LOCK = 0x72656C6179

# The tables holding rows of a channel's log, keyed by channel_id.
CHANNEL_TABLES = (
    "messages",
    "versions",
    "presence",
    "idempotency",
    "trimmed",
    "restored",
    "presence_members",
)

# Names compare as code points (COLLATE "C"), as they do in SQLite: channel listing pages by
# name. Channel ids are never reused (BIGSERIAL), and the channel row carries both sequences:
# locking it is what makes one writer of a channel's serials at a time, across nodes.
PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS keys (
    key_name TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    secret TEXT NOT NULL,
    capability TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS channels (
    id BIGSERIAL PRIMARY KEY,
    app_id TEXT NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    epoch TEXT NOT NULL,
    last_seq BIGINT NOT NULL DEFAULT 0,
    last_presence_seq BIGINT NOT NULL DEFAULT 0,
    UNIQUE (app_id, name)
);

CREATE TABLE IF NOT EXISTS messages (
    channel_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    timestamp BIGINT NOT NULL,
    body BYTEA NOT NULL,
    PRIMARY KEY (channel_id, seq)
);

CREATE INDEX IF NOT EXISTS messages_by_time ON messages (channel_id, timestamp);

CREATE TABLE IF NOT EXISTS versions (
    channel_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    target_seq BIGINT NOT NULL,
    body BYTEA NOT NULL,
    PRIMARY KEY (channel_id, seq)
);

CREATE INDEX IF NOT EXISTS versions_by_message ON versions (channel_id, target_seq, seq);

CREATE TABLE IF NOT EXISTS presence (
    channel_id BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    connection_id TEXT NOT NULL,
    timestamp BIGINT NOT NULL,
    body BYTEA NOT NULL,
    PRIMARY KEY (channel_id, seq)
);

CREATE INDEX IF NOT EXISTS presence_by_connection ON presence (channel_id, connection_id, seq);

CREATE TABLE IF NOT EXISTS apps (
    app_id TEXT PRIMARY KEY,
    spec TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS stats (
    app_id TEXT NOT NULL,
    interval_start BIGINT NOT NULL,
    entries TEXT NOT NULL,
    PRIMARY KEY (app_id, interval_start)
);

CREATE TABLE IF NOT EXISTS idempotency (
    channel_id BIGINT NOT NULL,
    message_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (channel_id, message_id)
);

CREATE TABLE IF NOT EXISTS trimmed (
    channel_id BIGINT PRIMARY KEY,
    trimmed_seq BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS nonces (
    key_name TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires BIGINT NOT NULL,
    PRIMARY KEY (key_name, nonce)
);

CREATE INDEX IF NOT EXISTS nonces_by_expiry ON nonces (expires);

CREATE TABLE IF NOT EXISTS nodes (
    node_id TEXT PRIMARY KEY,
    heartbeat BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS connections (
    connection_id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    node_id TEXT NOT NULL,
    dropped_at BIGINT
);

CREATE TABLE IF NOT EXISTS presence_members (
    channel_id BIGINT NOT NULL,
    member_key TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    node_id TEXT NOT NULL,
    body BYTEA NOT NULL,
    PRIMARY KEY (channel_id, member_key)
);

CREATE INDEX IF NOT EXISTS presence_members_by_node ON presence_members (node_id);

CREATE TABLE IF NOT EXISTS restored (
    channel_id BIGINT NOT NULL,
    after_seq BIGINT NOT NULL,
    upto_seq BIGINT NOT NULL,
    PRIMARY KEY (channel_id, after_seq)
);

CREATE TABLE IF NOT EXISTS revocations (
    id BIGSERIAL PRIMARY KEY,
    key_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    issued_before BIGINT NOT NULL,
    applies_at BIGINT NOT NULL
);

-- Ephemeral messages too large for a NOTIFY payload: written in the commit that publishes
-- them, named by the notification, read by the other nodes, dropped after a minute.
CREATE TABLE IF NOT EXISTS ephemeral (
    id BIGSERIAL PRIMARY KEY,
    channel_id BIGINT NOT NULL,
    created BIGINT NOT NULL,
    body BYTEA NOT NULL
);

CREATE INDEX IF NOT EXISTS ephemeral_by_age ON ephemeral (created);

-- Push state (channel_relay.push.store): the SQLite side tables' layout.
CREATE TABLE IF NOT EXISTS push_devices (
    app_id TEXT NOT NULL,
    device_id TEXT COLLATE "C" NOT NULL,
    client_id TEXT,
    token TEXT,
    body TEXT NOT NULL,
    PRIMARY KEY (app_id, device_id)
);

CREATE INDEX IF NOT EXISTS push_devices_by_client ON push_devices (app_id, client_id);
CREATE INDEX IF NOT EXISTS push_devices_by_token ON push_devices (app_id, token);

CREATE TABLE IF NOT EXISTS push_subscriptions (
    app_id TEXT NOT NULL,
    channel TEXT COLLATE "C" NOT NULL,
    device_id TEXT COLLATE "C" NOT NULL,
    client_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (app_id, channel, device_id, client_id)
);

CREATE TABLE IF NOT EXISTS push_notifications (
    id BIGSERIAL PRIMARY KEY,
    app_id TEXT NOT NULL,
    device_id TEXT NOT NULL,
    client_id TEXT,
    timestamp BIGINT NOT NULL,
    body TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS push_notifications_by_device
    ON push_notifications (app_id, device_id, id);

-- Annotations (channel_relay.store.annotations); ids grow in commit order among the
-- annotations of one message, which are written under a lock on that message.
CREATE TABLE IF NOT EXISTS annotations (
    id BIGSERIAL PRIMARY KEY,
    app_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    message_serial TEXT NOT NULL,
    serial TEXT NOT NULL,
    body BYTEA NOT NULL
);

CREATE INDEX IF NOT EXISTS annotations_by_message
    ON annotations (app_id, channel, message_serial, id);

-- Live stats (channel_relay.usage), one row per entry so that every node adds its counts with
-- one upsert: sums add up, peaks keep the largest.
CREATE TABLE IF NOT EXISTS live_stats (
    app_id TEXT NOT NULL,
    interval_start BIGINT NOT NULL,
    name TEXT NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (app_id, interval_start, name)
);
"""
