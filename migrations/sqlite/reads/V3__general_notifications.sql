-- As PostgreSQL's V7: `general` notifications (announcements, operator
-- notices) have no ticket, and an operator's notice no project. SQLite cannot
-- drop NOT NULL in place, so the table is copied into a new one.
CREATE TABLE rm_notifications_v3 (
    notification_id   BLOB    PRIMARY KEY,
    user_id           BLOB    NOT NULL,
    seq               INTEGER NOT NULL,
    notification_type TEXT    NOT NULL,
    title             TEXT    NOT NULL,
    message           TEXT    NOT NULL,
    ticket_id         BLOB,
    ticket_key        TEXT,
    project_id        BLOB,
    occurred_at       TEXT    NOT NULL,
    event_id          BLOB    NOT NULL,
    position          INTEGER NOT NULL,
    UNIQUE (user_id, seq),
    UNIQUE (event_id, user_id)
) WITHOUT ROWID;
INSERT INTO rm_notifications_v3 SELECT * FROM rm_notifications;
DROP TABLE rm_notifications;
ALTER TABLE rm_notifications_v3 RENAME TO rm_notifications;
