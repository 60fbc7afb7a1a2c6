//! The reads of [`super::SqliteReadStore`], with PostgreSQL's semantics:
//! the same orderings, paging cursors, unread rules and read marks. An
//! answer built from two statements reads them in one transaction, so from
//! one snapshot.

use rusqlite::types::Type;
use rusqlite::{params, Connection, OptionalExtension, Row};
use ticketflow_domain::Ticket;
use ticketflow_store::StoreError;
use uuid::Uuid;

use super::db;
use crate::queries::{Comment, Notification, NOTIFICATION_COLUMNS, NOTIFICATION_JOINS, UNREAD};

fn state(text: &str) -> Result<Ticket, StoreError> {
    Ok(serde_json::from_str(text)?)
}

pub(super) fn ticket(c: &Connection, id: Uuid) -> Result<Option<Ticket>, StoreError> {
    let text: Option<String> = c
        .prepare_cached("SELECT state FROM rm_tickets WHERE ticket_id = ?1 AND NOT deleted")
        .and_then(|mut stmt| stmt.query_row([id], |r| r.get(0)).optional())
        .map_err(db)?;
    text.as_deref().map(state).transpose()
}

pub(super) fn tickets(
    c: &Connection,
    project_id: Uuid,
    status_id: Option<i64>,
    assignee_id: Option<Uuid>,
    after_number: i64,
    limit: i64,
) -> Result<Vec<Ticket>, StoreError> {
    let mut stmt = c
        .prepare_cached(
            "SELECT state FROM rm_tickets
             WHERE project_id = ?1 AND NOT deleted AND number > ?2
               AND (?3 IS NULL OR status_id = ?3)
               AND (?4 IS NULL OR assignee_id = ?4)
             ORDER BY number LIMIT ?5",
        )
        .map_err(db)?;
    let texts = stmt
        .query_map(
            params![project_id, after_number, status_id, assignee_id, limit],
            |r| r.get::<_, String>(0),
        )
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(db)?;
    texts.iter().map(|t| state(t)).collect()
}

pub(super) fn comments(
    c: &Connection,
    ticket_id: Uuid,
    after_version: i64,
    limit: i64,
) -> Result<Vec<Comment>, StoreError> {
    let mut stmt = c
        .prepare_cached(
            "SELECT comment_id, ticket_id, author, body, created_at, version FROM rm_comments
             WHERE ticket_id = ?1 AND version > ?2 ORDER BY version LIMIT ?3",
        )
        .map_err(db)?;
    let rows = stmt
        .query_map(params![ticket_id, after_version, limit], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get::<_, String>(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(db)?;
    rows.into_iter()
        .map(|(id, ticket_id, author, body, created_at, version)| {
            Ok(Comment {
                id,
                ticket_id,
                author: serde_json::from_str(&author)?,
                body,
                created_at,
                version,
            })
        })
        .collect()
}

/// A notification as its channel message shows it (never read).
const MESSAGE_COLUMNS: &str = "n.notification_id, n.seq, n.notification_type, n.title, \
     n.message, n.ticket_id, n.ticket_key, n.project_id, n.occurred_at, 0";

/// A notification of [`NOTIFICATION_COLUMNS`] or [`MESSAGE_COLUMNS`].
fn notification(r: &Row) -> rusqlite::Result<Notification> {
    let kind: String = r.get(2)?;
    let notification_type = kind.parse().map_err(|e| {
        let reason = format!("notification type {kind:?}: {e}");
        rusqlite::Error::FromSqlConversionFailure(2, Type::Text, reason.into())
    })?;
    Ok(Notification {
        id: r.get(0)?,
        seq: r.get(1)?,
        notification_type,
        title: r.get(3)?,
        message: r.get(4)?,
        ticket_id: r.get(5)?,
        ticket_key: r.get(6)?,
        project_id: r.get(7)?,
        timestamp: r.get(8)?,
        read: r.get(9)?,
    })
}

pub(super) fn notifications(
    c: &Connection,
    user_id: Uuid,
    unread_only: bool,
    after_seq: Option<i64>,
    limit: i64,
) -> Result<(i64, Vec<Notification>), StoreError> {
    // One read transaction: the count and the page agree.
    let tx = c.unchecked_transaction().map_err(db)?;
    let sql = format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM {NOTIFICATION_JOINS}
         WHERE n.user_id = ?1 AND (?2 IS NULL OR n.seq < ?2) AND (NOT ?3 OR ({UNREAD}))
         ORDER BY n.seq DESC LIMIT ?4"
    );
    let items = tx
        .prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(
                params![user_id, after_seq, unread_only, limit],
                notification,
            )?
            .collect()
        })
        .map_err(db)?;
    let unread = unread_count(&tx, user_id)?;
    tx.commit().map_err(db)?;
    Ok((unread, items))
}

pub(super) fn notifications_since(
    c: &Connection,
    user_id: Uuid,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<Notification>, StoreError> {
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM rm_notifications n
         WHERE n.user_id = ?1 AND n.seq > ?2 ORDER BY n.seq LIMIT ?3"
    );
    c.prepare_cached(&sql)
        .and_then(|mut stmt| {
            stmt.query_map(params![user_id, after_seq, limit], notification)?
                .collect()
        })
        .map_err(db)
}

pub(super) fn ticket_messages(
    c: &Connection,
    project_id: Uuid,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<(i64, String)>, StoreError> {
    c.prepare_cached(
        "SELECT seq, message FROM rm_ticket_messages
         WHERE project_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
    )
    .and_then(|mut stmt| {
        stmt.query_map(params![project_id, after_seq, limit], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect()
    })
    .map_err(db)
}

pub(super) fn ticket_channel_head(c: &Connection, project_id: Uuid) -> Result<i64, StoreError> {
    c.prepare_cached("SELECT coalesce(max(seq), 0) FROM rm_ticket_messages WHERE project_id = ?1")
        .and_then(|mut stmt| stmt.query_row([project_id], |r| r.get(0)))
        .map_err(db)
}

pub(super) fn notification_head(c: &Connection, user_id: Uuid) -> Result<i64, StoreError> {
    let head: Option<i64> = c
        .prepare_cached("SELECT last_seq FROM rm_notification_heads WHERE user_id = ?1")
        .and_then(|mut stmt| stmt.query_row([user_id], |r| r.get(0)).optional())
        .map_err(db)?;
    Ok(head.unwrap_or(0))
}

pub(super) fn unread_count(c: &Connection, user_id: Uuid) -> Result<i64, StoreError> {
    let sql =
        format!("SELECT count(*) FROM {NOTIFICATION_JOINS} WHERE n.user_id = ?1 AND {UNREAD}");
    c.prepare_cached(&sql)
        .and_then(|mut stmt| stmt.query_row([user_id], |r| r.get(0)))
        .map_err(db)
}

/// Inside the caller's write transaction.
pub(super) fn mark_read(
    c: &Connection,
    user_id: Uuid,
    notification_id: Uuid,
) -> Result<bool, StoreError> {
    let above_mark: Option<bool> = c
        .prepare_cached(
            "SELECT n.seq > coalesce(m.up_to_seq, 0)
             FROM rm_notifications n
             LEFT JOIN notification_read_marks m ON m.user_id = n.user_id
             WHERE n.notification_id = ?2 AND n.user_id = ?1",
        )
        .and_then(|mut stmt| {
            stmt.query_row(params![user_id, notification_id], |r| r.get(0))
                .optional()
        })
        .map_err(db)?;
    // A flag is stored only above the read-all mark: below it, it says nothing new.
    if above_mark == Some(true) {
        c.prepare_cached(
            "INSERT INTO notification_reads (user_id, notification_id) VALUES (?1, ?2)
             ON CONFLICT DO NOTHING",
        )
        .and_then(|mut stmt| stmt.execute(params![user_id, notification_id]))
        .map_err(db)?;
    }
    Ok(above_mark.is_some())
}

/// Inside the caller's write transaction.
pub(super) fn mark_all_read(c: &Connection, user_id: Uuid) -> Result<i64, StoreError> {
    let head = notification_head(c, user_id)?;
    // The mark only moves forward; single flags it now covers are dropped.
    let mark: i64 = c
        .prepare_cached(
            "INSERT INTO notification_read_marks (user_id, up_to_seq) VALUES (?1, ?2)
             ON CONFLICT (user_id) DO UPDATE SET up_to_seq = max(up_to_seq, excluded.up_to_seq)
             RETURNING up_to_seq",
        )
        .and_then(|mut stmt| stmt.query_row(params![user_id, head], |r| r.get(0)))
        .map_err(db)?;
    c.prepare_cached(
        "DELETE FROM notification_reads WHERE user_id = ?1 AND notification_id IN (
           SELECT notification_id FROM rm_notifications WHERE user_id = ?1 AND seq <= ?2)",
    )
    .and_then(|mut stmt| stmt.execute(params![user_id, mark]))
    .map_err(db)?;
    Ok(mark)
}

pub(super) fn checkpoint(c: &Connection, name: &str) -> Result<i64, StoreError> {
    let position: Option<i64> = c
        .prepare_cached("SELECT position FROM projection_checkpoints WHERE name = ?1")
        .and_then(|mut stmt| stmt.query_row([name], |r| r.get(0)).optional())
        .map_err(db)?;
    Ok(position.unwrap_or(0))
}

pub(super) fn checkpoints(c: &Connection) -> Result<Vec<(String, i64)>, StoreError> {
    c.prepare_cached("SELECT name, position FROM projection_checkpoints ORDER BY name")
        .and_then(|mut stmt| {
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })
        .map_err(db)
}
