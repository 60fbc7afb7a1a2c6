-- The event log. Postgres is the source of truth; everything else is derived.

-- Global positions are handed out from this single row, locked by each append
-- just before it inserts and released at commit. Appends therefore commit in
-- position order, so a reader that has seen position p has seen every event
-- below p: no late commit can appear behind its cursor.
CREATE TABLE event_log_head (
    id       boolean PRIMARY KEY DEFAULT true CHECK (id),
    position bigint  NOT NULL
);
INSERT INTO event_log_head (id, position) VALUES (true, 0);

-- One row per aggregate instance: the compare-and-set target for optimistic
-- concurrency, and where a stream's last position is found without a scan.
CREATE TABLE streams (
    stream_id     uuid   PRIMARY KEY,
    stream_type   text   NOT NULL,
    project_id    uuid   NOT NULL,
    version       bigint NOT NULL,
    last_position bigint NOT NULL
);

CREATE TABLE events (
    position       bigint      PRIMARY KEY,
    event_id       uuid        NOT NULL UNIQUE,
    stream_id      uuid        NOT NULL,
    stream_type    text        NOT NULL,
    project_id     uuid        NOT NULL,
    version        bigint      NOT NULL,
    -- The project's ticket channel seq: contiguous 1, 2, 3, ... over the
    -- project's ticket events, NULL for project (membership) events.
    seq            bigint,
    event_type     text        NOT NULL,
    schema_version integer     NOT NULL,
    data           jsonb       NOT NULL,
    metadata       jsonb       NOT NULL,
    occurred_at    timestamptz NOT NULL,
    UNIQUE (stream_id, version)
);
CREATE INDEX events_project_position ON events (project_id, position);
CREATE UNIQUE INDEX events_project_seq ON events (project_id, seq) WHERE seq IS NOT NULL;

-- Aggregate state every N events, so long streams load in bounded time.
CREATE TABLE snapshots (
    stream_id uuid   PRIMARY KEY,
    version   bigint NOT NULL,
    state     jsonb  NOT NULL
);

-- Written in the same transaction as the project's events: the key index
-- (unique keys), the ticket number and channel seq counters, and membership.
CREATE TABLE projects (
    project_id         uuid        PRIMARY KEY,
    key                text        NOT NULL UNIQUE,
    name               text        NOT NULL,
    statuses           jsonb       NOT NULL,
    created_at         timestamptz NOT NULL,
    last_ticket_number bigint      NOT NULL DEFAULT 0,
    last_seq           bigint      NOT NULL DEFAULT 0
);

CREATE TABLE project_members (
    project_id   uuid        NOT NULL REFERENCES projects (project_id),
    user_id      uuid        NOT NULL,
    username     text        NOT NULL,
    display_name text        NOT NULL,
    role         text        NOT NULL,
    joined_at    timestamptz NOT NULL,
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_members_user ON project_members (user_id);

-- Accounts are plain state, not event-sourced.
CREATE TABLE users (
    user_id       uuid        PRIMARY KEY,
    username      text        NOT NULL UNIQUE,
    display_name  text        NOT NULL,
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL
);

-- Refresh tokens are stored as SHA-256 hashes. A family is one login's chain
-- of rotations; presenting a used token revokes the whole family.
CREATE TABLE refresh_tokens (
    token_hash bytea       PRIMARY KEY,
    family_id  uuid        NOT NULL,
    user_id    uuid        NOT NULL REFERENCES users (user_id),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE revoked_token_families (
    family_id  uuid        PRIMARY KEY,
    revoked_at timestamptz NOT NULL
);

-- Idempotency-Key records, per user. `response_status` is NULL while the
-- first request is still running.
CREATE TABLE idempotency_keys (
    user_id          uuid        NOT NULL,
    key              text        NOT NULL,
    request_hash     bytea       NOT NULL,
    response_status  integer,
    response_headers jsonb,
    response_body    bytea,
    created_at       timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
