-- Read models: tables derived from the event log by projections.
--
-- Every `rm_*` table belongs to one projection and can be rebuilt from the log
-- at any time: a rebuild fills copies (`LIKE ... INCLUDING ALL`) and swaps
-- them in. Nothing here is a source of truth except the notification read
-- flags at the end, which are user state and survive rebuilds.

-- Each projection's last applied global position, written in the same
-- transaction as its rows: a redelivered event (position <= this) is skipped.
CREATE TABLE projection_checkpoints (
    name       text        PRIMARY KEY,
    position   bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Projection "tickets": each ticket's current state. A deleted ticket keeps
-- its row (deleted = true) so a late event still finds the state.
CREATE TABLE rm_tickets (
    ticket_id     uuid    PRIMARY KEY,
    project_id    uuid    NOT NULL,
    number        bigint  NOT NULL,
    status_id     bigint,
    assignee_id   uuid,
    deleted       boolean NOT NULL,
    -- The domain `Ticket`, as serde writes it.
    state         jsonb   NOT NULL,
    last_position bigint  NOT NULL
);
-- Listing a project's tickets by number, with or without filters.
CREATE UNIQUE INDEX rm_tickets_project_number ON rm_tickets (project_id, number);
CREATE INDEX rm_tickets_project_status ON rm_tickets (project_id, status_id, number)
    WHERE NOT deleted;
CREATE INDEX rm_tickets_project_assignee ON rm_tickets (project_id, assignee_id, number)
    WHERE NOT deleted;

-- Projection "comments": one row per comment; `version` is the ticket version
-- the comment took, the cursor for paging a ticket's comments.
CREATE TABLE rm_comments (
    comment_id uuid        PRIMARY KEY,
    ticket_id  uuid        NOT NULL,
    project_id uuid        NOT NULL,
    version    bigint      NOT NULL,
    author     jsonb       NOT NULL,
    body       text        NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX rm_comments_ticket_version ON rm_comments (ticket_id, version);

-- Projection "notifications". The id is a UUID v5 of (event id, user id), so a
-- rebuild gives every notification the id it had; `seq` is contiguous per user
-- (1, 2, 3, ...) and, the log's order being fixed, also the same after a rebuild.
CREATE TABLE rm_notifications (
    notification_id   uuid        PRIMARY KEY,
    user_id           uuid        NOT NULL,
    seq               bigint      NOT NULL,
    notification_type text        NOT NULL,
    title             text        NOT NULL,
    message           text        NOT NULL,
    ticket_id         uuid        NOT NULL,
    ticket_key        text        NOT NULL,
    project_id        uuid        NOT NULL,
    occurred_at       timestamptz NOT NULL,
    event_id          uuid        NOT NULL,
    position          bigint      NOT NULL,
    UNIQUE (user_id, seq),
    UNIQUE (event_id, user_id)
);

-- Each user's newest notification seq (the notification channel's head).
CREATE TABLE rm_notification_heads (
    user_id  uuid   PRIMARY KEY,
    last_seq bigint NOT NULL
);

-- The ticket state the notifications projection judges each event against
-- (its own copy: projections advance independently).
CREATE TABLE rm_notify_tickets (
    ticket_id uuid  PRIMARY KEY,
    state     jsonb NOT NULL
);

-- Read flags: user state, not projected, kept across rebuilds. A notification
-- is read when its seq is at or below the user's read-all mark, or it has a
-- row here. Both refer to ids and seqs a rebuild reproduces.
CREATE TABLE notification_reads (
    user_id         uuid NOT NULL,
    notification_id uuid NOT NULL,
    PRIMARY KEY (user_id, notification_id)
);

CREATE TABLE notification_read_marks (
    user_id   uuid   PRIMARY KEY,
    up_to_seq bigint NOT NULL
);
