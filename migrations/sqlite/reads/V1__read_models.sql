-- Read models on SQLite: the tables of migrations/V2__read_models.sql and
-- V3__channel_messages.sql, with SQLite's types. Ids are 16-byte BLOBs (so
-- they sort as PostgreSQL's uuids do), stored JSON is TEXT, flags are 0/1,
-- timestamps are TEXT as rusqlite writes them ("2024-05-01 12:00:00.123456+00:00").

-- Each projection's last applied global position, written in the same
-- transaction as its rows.
CREATE TABLE projection_checkpoints (
    name       TEXT    PRIMARY KEY,
    position   INTEGER NOT NULL,
    updated_at TEXT    NOT NULL
) WITHOUT ROWID;

-- Projection "tickets": each ticket's current state; a deleted ticket keeps
-- its row (deleted = 1).
CREATE TABLE rm_tickets (
    ticket_id     BLOB    PRIMARY KEY,
    project_id    BLOB    NOT NULL,
    number        INTEGER NOT NULL,
    status_id     INTEGER,
    assignee_id   BLOB,
    deleted       INTEGER NOT NULL,
    state         TEXT    NOT NULL,
    last_position INTEGER NOT NULL
) WITHOUT ROWID;
CREATE UNIQUE INDEX rm_tickets_project_number ON rm_tickets (project_id, number);
CREATE INDEX rm_tickets_project_status ON rm_tickets (project_id, status_id, number)
    WHERE NOT deleted;
CREATE INDEX rm_tickets_project_assignee ON rm_tickets (project_id, assignee_id, number)
    WHERE NOT deleted;

-- Projection "comments"; `version` is the ticket version the comment took.
CREATE TABLE rm_comments (
    comment_id BLOB    PRIMARY KEY,
    ticket_id  BLOB    NOT NULL,
    project_id BLOB    NOT NULL,
    version    INTEGER NOT NULL,
    author     TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    created_at TEXT    NOT NULL
) WITHOUT ROWID;
CREATE UNIQUE INDEX rm_comments_ticket_version ON rm_comments (ticket_id, version);

-- Projection "notifications": contiguous per-user seqs, ids derived from
-- (event, user), so a re-derivation reproduces both.
CREATE TABLE rm_notifications (
    notification_id   BLOB    PRIMARY KEY,
    user_id           BLOB    NOT NULL,
    seq               INTEGER NOT NULL,
    notification_type TEXT    NOT NULL,
    title             TEXT    NOT NULL,
    message           TEXT    NOT NULL,
    ticket_id         BLOB    NOT NULL,
    ticket_key        TEXT    NOT NULL,
    project_id        BLOB    NOT NULL,
    occurred_at       TEXT    NOT NULL,
    event_id          BLOB    NOT NULL,
    position          INTEGER NOT NULL,
    UNIQUE (user_id, seq),
    UNIQUE (event_id, user_id)
) WITHOUT ROWID;
CREATE INDEX rm_notifications_position ON rm_notifications (position);

-- Each user's newest notification seq (the notification channel's head).
CREATE TABLE rm_notification_heads (
    user_id  BLOB    PRIMARY KEY,
    last_seq INTEGER NOT NULL
) WITHOUT ROWID;

-- The ticket state the notifications projection judges each event against.
CREATE TABLE rm_notify_tickets (
    ticket_id BLOB PRIMARY KEY,
    state     TEXT NOT NULL
) WITHOUT ROWID;

-- Read flags: user state, not projected. A notification is read when its
-- seq is at or below the user's read-all mark, or it has a row here.
CREATE TABLE notification_reads (
    user_id         BLOB NOT NULL,
    notification_id BLOB NOT NULL,
    PRIMARY KEY (user_id, notification_id)
) WITHOUT ROWID;

CREATE TABLE notification_read_marks (
    user_id   BLOB    PRIMARY KEY,
    up_to_seq INTEGER NOT NULL
) WITHOUT ROWID;

-- Projection "ticket_channel": every ticket event's message, rendered once,
-- by project channel seq and by global position.
CREATE TABLE rm_ticket_messages (
    project_id BLOB    NOT NULL,
    seq        INTEGER NOT NULL,
    position   INTEGER NOT NULL,
    message    TEXT    NOT NULL,
    PRIMARY KEY (project_id, seq)
) WITHOUT ROWID;
CREATE INDEX rm_ticket_messages_position ON rm_ticket_messages (position);

-- The ticket state the ticket channel renders messages from.
CREATE TABLE rm_channel_tickets (
    ticket_id BLOB PRIMARY KEY,
    state     TEXT NOT NULL
) WITHOUT ROWID;
