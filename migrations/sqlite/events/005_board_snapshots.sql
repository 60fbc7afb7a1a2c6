-- Board snapshots: every live ticket of a project as it stood after the
-- project's events up to `position` (deflated JSON), so the board as of a
-- moment replays only the events since the nearest one (app/src/board.rs).
-- Derived from the log and written by those queries: deleting rows loses
-- nothing but time.
CREATE TABLE board_snapshots (
    project_id BLOB NOT NULL,
    position INTEGER NOT NULL,
    tickets INTEGER NOT NULL,
    states BLOB NOT NULL,
    PRIMARY KEY (project_id, position)
);
