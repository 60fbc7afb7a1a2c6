-- The event log of the embedded mode: events.db. The same tables and
-- guarantees as PostgreSQL's V1__event_store.sql, in SQLite's types:
--   uuid       -> BLOB (16 bytes; ordered as PostgreSQL orders uuids)
--   timestamps -> INTEGER microseconds since the Unix epoch, UTC: the
--                 precision PostgreSQL keeps, so "as of a time" compares alike
--   jsonb      -> TEXT (JSON)
-- Files here are named NNN_name.sql, not V<n>__name.sql: refinery walks all of
-- migrations/ for the PostgreSQL schema and must not pick these up.
--
-- No counter row for positions: one connection writes, so positions are
-- max(position) + 1, taken inside the writing transaction, and a batch of
-- appends becomes visible to readers all at once at its commit.

CREATE TABLE streams (
    stream_id     BLOB    PRIMARY KEY,
    stream_type   TEXT    NOT NULL,
    project_id    BLOB    NOT NULL,
    version       INTEGER NOT NULL,
    last_position INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE events (
    -- The rowid itself: reading in position order walks the table.
    position       INTEGER PRIMARY KEY,
    event_id       BLOB    NOT NULL UNIQUE,
    stream_id      BLOB    NOT NULL,
    stream_type    TEXT    NOT NULL,
    project_id     BLOB    NOT NULL,
    version        INTEGER NOT NULL,
    -- The project's ticket channel seq: contiguous 1, 2, 3, ... over the
    -- project's ticket events, NULL for project (membership) events.
    seq            INTEGER,
    event_type     TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    data           TEXT    NOT NULL,
    metadata       TEXT    NOT NULL,
    occurred_at    INTEGER NOT NULL,
    UNIQUE (stream_id, version)
);
CREATE INDEX events_project_position ON events (project_id, position);
CREATE UNIQUE INDEX events_project_seq ON events (project_id, seq) WHERE seq IS NOT NULL;

-- Aggregate state every N events, so long streams load in bounded time.
CREATE TABLE snapshots (
    stream_id BLOB    PRIMARY KEY,
    version   INTEGER NOT NULL,
    state     TEXT    NOT NULL
) WITHOUT ROWID;

-- Written in the same transaction as the project's events: the key index
-- (unique keys), the ticket number and channel seq counters, and membership.
CREATE TABLE projects (
    project_id         BLOB    PRIMARY KEY,
    key                TEXT    NOT NULL UNIQUE,
    name               TEXT    NOT NULL,
    statuses           TEXT    NOT NULL,
    created_at         INTEGER NOT NULL,
    last_ticket_number INTEGER NOT NULL DEFAULT 0,
    last_seq           INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE project_members (
    project_id   BLOB    NOT NULL REFERENCES projects (project_id),
    user_id      BLOB    NOT NULL,
    username     TEXT    NOT NULL,
    display_name TEXT    NOT NULL,
    role         TEXT    NOT NULL,
    joined_at    INTEGER NOT NULL,
    PRIMARY KEY (project_id, user_id)
) WITHOUT ROWID;
CREATE INDEX project_members_user ON project_members (user_id);

-- Accounts are plain state, not event-sourced.
CREATE TABLE users (
    user_id       BLOB    PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    display_name  TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
) WITHOUT ROWID;

-- Refresh tokens are stored as SHA-256 hashes. A family is one login's chain
-- of rotations; presenting a used token revokes the whole family.
CREATE TABLE refresh_tokens (
    token_hash BLOB    PRIMARY KEY,
    family_id  BLOB    NOT NULL,
    user_id    BLOB    NOT NULL REFERENCES users (user_id),
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
) WITHOUT ROWID;
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE revoked_token_families (
    family_id  BLOB    PRIMARY KEY,
    revoked_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Idempotency-Key records, per user. `response_status` is NULL while the
-- first request is still running.
CREATE TABLE idempotency_keys (
    user_id          BLOB    NOT NULL,
    key              TEXT    NOT NULL,
    request_hash     BLOB    NOT NULL,
    response_status  INTEGER,
    response_headers TEXT,
    response_body    BLOB,
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
