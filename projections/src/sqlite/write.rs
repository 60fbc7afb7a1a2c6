//! The writes of a batch on SQLite: a cached statement per table, run once
//! per row (in-process, a row costs microseconds; there is no round trip to
//! save). The rows come owned, ready to bind on a blocking thread.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use ticketflow_domain::Ticket;
use ticketflow_store::StoreError;
use uuid::Uuid;

use super::db;
use crate::read_store::{CommentRow, MessageRow, NotificationRow, StateTable, TicketRow};

/// The current time as SQLite stores it in `updated_at`.
const NOW: &str = "strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')";

pub(super) fn load_states(
    c: &Connection,
    table: StateTable,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, Ticket)>, StoreError> {
    let sql = format!("SELECT state FROM {} WHERE ticket_id = ?1", table.table());
    let mut stmt = c.prepare_cached(&sql).map_err(db)?;
    let mut states = Vec::with_capacity(ids.len());
    for id in ids {
        let text: Option<String> = stmt.query_row([id], |r| r.get(0)).optional().map_err(db)?;
        if let Some(text) = text {
            states.push((*id, serde_json::from_str(&text)?));
        }
    }
    Ok(states)
}

/// `rows`: each ticket's id and its state as JSON.
pub(super) fn save_states(
    c: &Connection,
    table: StateTable,
    rows: &[(Uuid, String)],
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO {} (ticket_id, state) VALUES (?1, ?2)
         ON CONFLICT (ticket_id) DO UPDATE SET state = excluded.state",
        table.table()
    );
    let mut stmt = c.prepare_cached(&sql).map_err(db)?;
    for (id, state) in rows {
        stmt.execute(params![id, state]).map_err(db)?;
    }
    Ok(())
}

pub(super) fn drop_states(
    c: &Connection,
    table: StateTable,
    ids: &[Uuid],
) -> Result<(), StoreError> {
    let sql = format!("DELETE FROM {} WHERE ticket_id = ?1", table.table());
    let mut stmt = c.prepare_cached(&sql).map_err(db)?;
    for id in ids {
        stmt.execute([id]).map_err(db)?;
    }
    Ok(())
}

/// An `rm_tickets` row's values.
pub(super) struct TicketValues {
    id: Uuid,
    project_id: Uuid,
    number: i64,
    status_id: Option<i64>,
    assignee_id: Option<Uuid>,
    deleted: bool,
    state: String,
    position: i64,
}

impl TicketValues {
    pub(super) fn of(row: &TicketRow<'_>) -> Result<Self, StoreError> {
        let state = row.state;
        Ok(Self {
            id: state.id,
            project_id: state.project_id,
            number: state.number as i64,
            status_id: state.status.as_ref().map(|s| s.id),
            assignee_id: state.assignee.as_ref().map(|a| a.id),
            deleted: state.deleted,
            state: serde_json::to_string(state)?,
            position: row.position,
        })
    }
}

pub(super) fn upsert_tickets(c: &Connection, rows: &[TicketValues]) -> Result<(), StoreError> {
    let mut stmt = c
        .prepare_cached(
            "INSERT INTO rm_tickets
               (ticket_id, project_id, number, status_id, assignee_id, deleted, state,
                last_position)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (ticket_id) DO UPDATE SET
               project_id = excluded.project_id, number = excluded.number,
               status_id = excluded.status_id, assignee_id = excluded.assignee_id,
               deleted = excluded.deleted, state = excluded.state,
               last_position = excluded.last_position",
        )
        .map_err(db)?;
    for r in rows {
        stmt.execute(params![
            r.id,
            r.project_id,
            r.number,
            r.status_id,
            r.assignee_id,
            r.deleted,
            r.state,
            r.position
        ])
        .map_err(db)?;
    }
    Ok(())
}

/// An `rm_comments` row's values.
pub(super) struct CommentValues {
    comment_id: Uuid,
    ticket_id: Uuid,
    project_id: Uuid,
    version: i64,
    author: String,
    body: String,
    created_at: DateTime<Utc>,
}

impl CommentValues {
    pub(super) fn of(row: &CommentRow<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            comment_id: row.comment_id,
            ticket_id: row.ticket_id,
            project_id: row.project_id,
            version: row.version,
            author: serde_json::to_string(row.author)?,
            body: row.body.clone(),
            created_at: row.created_at,
        })
    }
}

pub(super) fn insert_comments(c: &Connection, rows: &[CommentValues]) -> Result<(), StoreError> {
    let mut stmt = c
        .prepare_cached(
            "INSERT INTO rm_comments
               (comment_id, ticket_id, project_id, version, author, body, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (comment_id) DO NOTHING",
        )
        .map_err(db)?;
    for r in rows {
        stmt.execute(params![
            r.comment_id,
            r.ticket_id,
            r.project_id,
            r.version,
            r.author,
            r.body,
            r.created_at
        ])
        .map_err(db)?;
    }
    Ok(())
}

/// The transaction holds the database's write lock, so the heads it moves
/// are its own until commit.
pub(super) fn advance_heads(
    c: &Connection,
    added: &[(Uuid, i64)],
) -> Result<Vec<(Uuid, i64)>, StoreError> {
    let mut stmt = c
        .prepare_cached(
            "INSERT INTO rm_notification_heads (user_id, last_seq) VALUES (?1, ?2)
             ON CONFLICT (user_id) DO UPDATE SET last_seq = last_seq + excluded.last_seq
             RETURNING last_seq",
        )
        .map_err(db)?;
    added
        .iter()
        .map(|(user, count)| {
            let last = stmt
                .query_row(params![user, count], |r| r.get(0))
                .map_err(db)?;
            Ok((*user, last))
        })
        .collect()
}

/// An `rm_notifications` row's values.
pub(super) struct NotificationValues {
    notification_id: Uuid,
    user_id: Uuid,
    seq: i64,
    notification_type: &'static str,
    title: String,
    message: String,
    ticket_id: Option<Uuid>,
    ticket_key: Option<String>,
    project_id: Option<Uuid>,
    occurred_at: DateTime<Utc>,
    event_id: Uuid,
    position: i64,
}

impl NotificationValues {
    pub(super) fn of(row: &NotificationRow<'_>) -> Self {
        Self {
            notification_id: row.notification_id,
            user_id: row.user_id,
            seq: row.seq,
            notification_type: row.notification_type.as_str(),
            title: row.title.to_string(),
            message: row.message.to_string(),
            ticket_id: row.ticket_id,
            ticket_key: row.ticket_key.map(str::to_string),
            project_id: row.project_id,
            occurred_at: row.occurred_at,
            event_id: row.event_id,
            position: row.position,
        }
    }
}

pub(super) fn insert_notifications(
    c: &Connection,
    rows: &[NotificationValues],
) -> Result<(), StoreError> {
    let mut stmt = c
        .prepare_cached(
            "INSERT INTO rm_notifications (notification_id, user_id, seq, notification_type,
               title, message, ticket_id, ticket_key, project_id, occurred_at, event_id, position)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )
        .map_err(db)?;
    for r in rows {
        stmt.execute(params![
            r.notification_id,
            r.user_id,
            r.seq,
            r.notification_type,
            r.title,
            r.message,
            r.ticket_id,
            r.ticket_key,
            r.project_id,
            r.occurred_at,
            r.event_id,
            r.position
        ])
        .map_err(db)?;
    }
    Ok(())
}

pub(super) fn insert_ticket_messages(
    c: &Connection,
    rows: &[MessageRow],
) -> Result<(), StoreError> {
    let mut stmt = c
        .prepare_cached(
            "INSERT INTO rm_ticket_messages (project_id, seq, position, message)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (project_id, seq) DO NOTHING",
        )
        .map_err(db)?;
    for r in rows {
        stmt.execute(params![r.project_id, r.seq, r.position, r.message])
            .map_err(db)?;
    }
    Ok(())
}

/// The transaction (`BEGIN IMMEDIATE`) already holds the write lock: the
/// checkpoints are locked with everything else.
pub(super) fn lock_checkpoints(c: &Connection, names: &[String]) -> Result<Vec<i64>, StoreError> {
    let insert = format!(
        "INSERT INTO projection_checkpoints (name, position, updated_at) VALUES (?1, 0, {NOW})
         ON CONFLICT (name) DO NOTHING"
    );
    let mut insert = c.prepare_cached(&insert).map_err(db)?;
    let mut select = c
        .prepare_cached("SELECT position FROM projection_checkpoints WHERE name = ?1")
        .map_err(db)?;
    names
        .iter()
        .map(|name| {
            insert.execute([name]).map_err(db)?;
            select.query_row([name], |r| r.get(0)).map_err(db)
        })
        .collect()
}

pub(super) fn set_checkpoints(c: &Connection, moves: &[(String, i64)]) -> Result<(), StoreError> {
    let sql = format!(
        "UPDATE projection_checkpoints SET position = ?2, updated_at = {NOW} WHERE name = ?1"
    );
    let mut update = c.prepare_cached(&sql).map_err(db)?;
    for (name, position) in moves {
        update.execute(params![name, position]).map_err(db)?;
    }
    Ok(())
}
