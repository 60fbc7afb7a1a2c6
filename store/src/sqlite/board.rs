//! Board snapshots and the time lookups of the board as of a moment, on
//! SQLite (see [`crate::BoardSnapshot`]).

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::micros;
use crate::{BoardSnapshot, StoreError};

pub(super) fn latest_at_most(
    conn: &Connection,
    project_id: Uuid,
    position: i64,
) -> Result<Option<BoardSnapshot>, StoreError> {
    let row: Option<(i64, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT position, states FROM board_snapshots
             WHERE project_id = ?1 AND position <= ?2 ORDER BY position DESC LIMIT 1",
        )?
        .query_row(params![project_id, position], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    row.map(|(at, states)| BoardSnapshot::decode(at, &states))
        .transpose()
}

pub(super) fn save(
    conn: &Connection,
    project_id: Uuid,
    position: i64,
    count: i32,
    states: &[u8],
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO board_snapshots (project_id, position, tickets, states)
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
    )?
    .execute(params![project_id, position, count, states])?;
    Ok(())
}

pub(super) fn first_event_after(
    conn: &Connection,
    project_id: Uuid,
    time: DateTime<Utc>,
) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT position FROM events WHERE project_id = ?1 AND occurred_at > ?2
             ORDER BY position LIMIT 1",
        )?
        .query_row(params![project_id, micros(time)], |r| r.get(0))
        .optional()?)
}
