"""The PostgreSQL schema: the SQLite one's tables (see schema.py for what each holds) in
PostgreSQL's types, applied idempotently at open under an advisory lock, so nodes starting
together do not race to create it."""

from __future__ import annotations

__all__ = [
    "NOTIFY_BYTES",
    "NOTIFY_CHANNEL",
    "PG_FUNCTIONS",
    "PG_SCHEMA",
    "SCHEMA_LOCK",
]

# The LISTEN/NOTIFY channel every node listens on for commits of the others.
NOTIFY_CHANNEL = "relay_log"
# A NOTIFY payload must stay under 8000 bytes; a commit naming more channels sends several.
NOTIFY_BYTES = 7000
# Milliseconds a large ephemeral message's row (too large for a notification) waits for the other
# nodes to read it.
PARKED_MS = 60_000
# A commit whose new messages take at most this many bytes carries them in its notification, so
# the other nodes deliver them without reading the log.
INLINE_BYTES = 3000
# pg_advisory_xact_lock key taken while the schema is applied.
SCHEMA_LOCK = 0x72656C6179

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

# The commit's server side (channel_relay.store.postgres). `relay_publish` commits a batch of
# publishes in ONE statement, run in autocommit, so a group commit is one round trip: it locks
# the channels' rows (in id order, so nodes never deadlock), then, in statements that each see
# everything committed before the lock was granted, decides idempotency, numbers the new
# messages from each channel's last_seq, stores them and their ids, advances last_seq and
# notifies. A message body arrives packed with the serial `<epoch>-0000000000000000` as its last
# entry; the seq's 16 digits are written over the zeros. It returns, per message in order, its
# seq and whether this commit stored it (false: its id was stored before, under that seq).
# The notification names, per channel written, [id, first seq, last seq, app, name] ("ranges");
# when the commit's new messages are small (INLINE_BYTES) it also carries them, per channel
# [id, first seq, [bodies as stored, base64 msgpack, in seq order]] ("messages", a kind of its
# own, so a node of the previous version, which knows only the others, still reads the ranges).
#
# Ephemeral messages (never stored) ride in the notification as base64 msgpack, or, too large
# for it, in a row of `ephemeral` the notification names ("parked"), with every other of that
# channel's in the batch (so a channel's entries are all of one kind, in order).
#
# `relay_notify` sends a commit's notification entries as JSON payloads
# {"node": ..., "<kind>": [entry, ...], ...} of at most NOTIFY_BYTES of entries, each kind's
# entries in the order given.
PG_FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION relay_notify(node TEXT, kinds TEXT[], entries TEXT[])
RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    kind TEXT;
    entry TEXT;
    payload TEXT := '';
    open_kind TEXT;
    size INT := 0;
BEGIN
    FOR kind, entry IN
        SELECT u.kind, u.entry FROM unnest(kinds, entries) WITH ORDINALITY AS u(kind, entry, i)
        ORDER BY u.kind, u.i
    LOOP
        IF open_kind IS NOT NULL AND size + length(entry) > {NOTIFY_BYTES} THEN
            PERFORM pg_notify('{NOTIFY_CHANNEL}', '{{"node":' || to_json(node) || payload || ']}}');
            payload := '';
            open_kind := NULL;
            size := 0;
        END IF;
        IF open_kind IS DISTINCT FROM kind THEN
            payload := payload || CASE WHEN open_kind IS NULL THEN '' ELSE ']' END
                || ',' || to_json(kind) || ':[';
            open_kind := kind;
        ELSE
            payload := payload || ',';
        END IF;
        payload := payload || entry;
        size := size + length(entry);
    END LOOP;
    IF open_kind IS NOT NULL THEN
        PERFORM pg_notify('{NOTIFY_CHANNEL}', '{{"node":' || to_json(node) || payload || ']}}');
    END IF;
END $$;

CREATE OR REPLACE FUNCTION relay_publish(
    node TEXT, cids BIGINT[], mids TEXT[], stamps BIGINT[], bodies BYTEA[],
    ephemeral_cids BIGINT[], ephemeral_bodies BYTEA[], now_ms BIGINT,
    OUT seqs BIGINT[], OUT fresh BOOLEAN[]
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    wanted BIGINT[] := ARRAY(SELECT DISTINCT c FROM unnest(cids || ephemeral_cids) AS c);
    locked_ids BIGINT[];
    last_seqs BIGINT[];
    -- Channels with an ephemeral entry too large for the notification: all of their entries
    -- are parked, so the other nodes deliver them in order.
    parked BIGINT[] := ARRAY(
        SELECT DISTINCT u.c FROM unnest(ephemeral_cids, ephemeral_bodies) AS u(c, b)
        WHERE (octet_length(u.b) + 2) / 3 * 4 > {NOTIFY_BYTES});
    kinds TEXT[];
    entries TEXT[];
    app TEXT;
    chan TEXT;
    row_id BIGINT;
    trimmed BOOLEAN := false;
    small BOOLEAN;
BEGIN
    -- The locked rows' last_seq is their latest (READ COMMITTED re-reads a row it waited for).
    SELECT array_agg(l.id), array_agg(l.last_seq) INTO locked_ids, last_seqs
    FROM (SELECT id, last_seq FROM channels WHERE id = ANY(wanted) ORDER BY id FOR UPDATE) AS l;
    IF coalesce(cardinality(locked_ids), 0) < cardinality(wanted) THEN
        RAISE EXCEPTION 'a channel published to is not in the store'
            USING ERRCODE = 'no_data_found';
    END IF;
    -- A repeated id is stored once: its first message in the batch is the one numbered.
    WITH m AS (
        SELECT u.i, u.cid, u.mid,
               CASE WHEN u.mid IS NULL THEN u.i
                    ELSE min(u.i) OVER (PARTITION BY u.cid, u.mid) END AS anchor
        FROM unnest(cids, mids) WITH ORDINALITY AS u(cid, mid, i)
    ), known AS (
        -- One index probe per id (LIMIT 1 keeps the planner from hashing the whole table).
        SELECT m.i, k.seq FROM m
        JOIN LATERAL (SELECT d.seq FROM idempotency d
                      WHERE d.channel_id = m.cid AND d.message_id = m.mid LIMIT 1) AS k ON true
        WHERE m.i = m.anchor
    ), taken AS (
        SELECT m.i, c.last_seq + row_number() OVER (PARTITION BY m.cid ORDER BY m.i) AS seq
        FROM m JOIN unnest(locked_ids, last_seqs) AS c(id, last_seq) ON c.id = m.cid
        WHERE m.i = m.anchor AND NOT EXISTS (SELECT 1 FROM known WHERE known.i = m.i)
    )
    SELECT coalesce(array_agg(coalesce(t.seq, k.seq) ORDER BY m.i), '{{}}'),
           coalesce(array_agg(m.i = m.anchor AND t.seq IS NOT NULL ORDER BY m.i), '{{}}')
    INTO seqs, fresh
    FROM m LEFT JOIN taken t ON t.i = m.anchor LEFT JOIN known k ON k.i = m.anchor;

    bodies := ARRAY(
        SELECT overlay(u.body PLACING convert_to(lpad(u.seq::text, 16, '0'), 'UTF8')
                       FROM octet_length(u.body) - 15)
        FROM unnest(bodies, seqs) WITH ORDINALITY AS u(body, seq, i) ORDER BY u.i
    );
    small := (SELECT coalesce(sum(octet_length(u.body)), 0) FROM unnest(bodies, fresh)
               AS u(body, fresh) WHERE u.fresh) <= {INLINE_BYTES};
    INSERT INTO messages (channel_id, seq, timestamp, body)
    SELECT u.cid, u.seq, u.ts, u.body
    FROM unnest(cids, seqs, stamps, bodies, fresh) AS u(cid, seq, ts, body, fresh)
    WHERE u.fresh;
    INSERT INTO idempotency (channel_id, message_id, seq)
    SELECT u.cid, u.mid, u.seq FROM unnest(cids, mids, seqs, fresh) AS u(cid, mid, seq, fresh)
    WHERE u.fresh AND u.mid IS NOT NULL;

    WITH taken AS (
        SELECT u.cid, min(u.seq) AS first, max(u.seq) AS last
        FROM unnest(cids, seqs, fresh) AS u(cid, seq, fresh) WHERE u.fresh GROUP BY u.cid
    ), advanced AS (
        UPDATE channels c SET last_seq = t.last FROM taken t WHERE c.id = t.cid
        RETURNING c.id, t.first, t.last, c.app_id, c.name
    )
    SELECT coalesce(array_agg('ranges'::text), '{{}}'),
           coalesce(array_agg(json_build_array(a.id, a.first, a.last, a.app_id, a.name)::text
                              ORDER BY a.id), '{{}}')
    INTO kinds, entries FROM advanced a;
    IF small THEN
        SELECT kinds || coalesce(array_agg('messages'::text), '{{}}'),
               entries || coalesce(array_agg(json_build_array(t.cid, t.first, t.bodies)::text
                                             ORDER BY t.cid), '{{}}')
        INTO kinds, entries
        FROM (SELECT u.cid, min(u.seq) AS first,
                     json_agg(translate(encode(u.body, 'base64'), E'\\n', '') ORDER BY u.i)
                         AS bodies
              FROM unnest(cids, seqs, bodies, fresh) WITH ORDINALITY AS u(cid, seq, body, fresh, i)
              WHERE u.fresh GROUP BY u.cid) AS t;
    END IF;
    FOR i IN 1 .. coalesce(cardinality(ephemeral_cids), 0) LOOP
        SELECT c.app_id, c.name INTO app, chan FROM channels c WHERE c.id = ephemeral_cids[i];
        IF NOT ephemeral_cids[i] = ANY(parked) THEN
            kinds := kinds || 'ephemeral'::text;
            entries := entries || json_build_array(ephemeral_cids[i], app, chan,
                translate(encode(ephemeral_bodies[i], 'base64'), E'\\n', ''))::text;
        ELSE
            IF NOT trimmed THEN
                DELETE FROM ephemeral WHERE created < now_ms - {PARKED_MS};
                trimmed := true;
            END IF;
            INSERT INTO ephemeral (channel_id, created, body)
            VALUES (ephemeral_cids[i], now_ms, ephemeral_bodies[i]) RETURNING id INTO row_id;
            kinds := kinds || 'parked'::text;
            entries := entries || json_build_array(ephemeral_cids[i], app, chan, row_id)::text;
        END IF;
    END LOOP;
    PERFORM relay_notify(node, kinds, entries);
END $$;
"""
