//! The reads of [`super::PgReadStore`], each one statement (so from one
//! snapshot) on a pooled connection, over the live tables.

use deadpool_postgres::ClientWrapper;
use ticketflow_domain::Ticket;
use ticketflow_store::pg::prepared;
use ticketflow_store::StoreError;
use tokio_postgres::types::Json;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::queries::{Comment, Notification, NOTIFICATION_COLUMNS, NOTIFICATION_JOINS, UNREAD};

pub(super) async fn ticket(client: &ClientWrapper, id: Uuid) -> Result<Option<Ticket>, StoreError> {
    let row = prepared::query_opt(
        client,
        "SELECT state FROM rm_tickets WHERE ticket_id = $1 AND NOT deleted",
        &[&id],
    )
    .await?;
    row.map(|r| state(&r)).transpose()
}

pub(super) async fn tickets(
    client: &ClientWrapper,
    project_id: Uuid,
    status_id: Option<i64>,
    assignee_id: Option<Uuid>,
    after_number: i64,
    limit: i64,
) -> Result<Vec<Ticket>, StoreError> {
    let rows = prepared::query(
        client,
        "SELECT state FROM rm_tickets
             WHERE project_id = $1 AND NOT deleted AND number > $2
               AND ($3::bigint IS NULL OR status_id = $3)
               AND ($4::uuid IS NULL OR assignee_id = $4)
             ORDER BY number LIMIT $5",
        &[&project_id, &after_number, &status_id, &assignee_id, &limit],
    )
    .await?;
    rows.iter().map(state).collect()
}

/// A ticket's state, decoded straight from its column's text.
fn state(row: &Row) -> Result<Ticket, StoreError> {
    let Json(state) = row.try_get(0)?;
    Ok(state)
}

pub(super) async fn comments(
    client: &ClientWrapper,
    ticket_id: Uuid,
    after_version: i64,
    limit: i64,
) -> Result<Vec<Comment>, StoreError> {
    let rows = prepared::query(
        client,
        "SELECT comment_id, ticket_id, author, body, created_at, version FROM rm_comments
             WHERE ticket_id = $1 AND version > $2 ORDER BY version LIMIT $3",
        &[&ticket_id, &after_version, &limit],
    )
    .await?;
    rows.iter().map(comment).collect()
}

fn comment(r: &Row) -> Result<Comment, StoreError> {
    Ok(Comment {
        id: r.try_get(0)?,
        ticket_id: r.try_get(1)?,
        author: serde_json::from_value(r.try_get(2)?)?,
        body: r.try_get(3)?,
        created_at: r.try_get(4)?,
        version: r.try_get(5)?,
    })
}

pub(super) async fn notifications(
    client: &ClientWrapper,
    user_id: Uuid,
    unread_only: bool,
    after_seq: Option<i64>,
    limit: i64,
) -> Result<(i64, Vec<Notification>), StoreError> {
    // One statement for the count and the page, so they agree; the count
    // comes back on every row, and on a lone row of NULLs when the page is empty.
    let sql = format!(
        "WITH page AS (
           SELECT {NOTIFICATION_COLUMNS} FROM {NOTIFICATION_JOINS}
           WHERE n.user_id = $1 AND ($2::bigint IS NULL OR n.seq < $2)
             AND (NOT $3 OR ({UNREAD}))
           ORDER BY n.seq DESC LIMIT $4),
         unread AS (
           SELECT count(*) AS c FROM {NOTIFICATION_JOINS} WHERE n.user_id = $1 AND {UNREAD})
         SELECT page.*, unread.c FROM unread LEFT JOIN page ON true ORDER BY page.seq DESC"
    );
    let rows = prepared::query(client, &sql, &[&user_id, &after_seq, &unread_only, &limit]).await?;
    let unread = rows.first().map_or(Ok(0), |r| r.try_get(10))?;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        if row.try_get::<_, Option<Uuid>>(0)?.is_some() {
            items.push(notification(row)?);
        }
    }
    Ok((unread, items))
}

/// The columns of a notification as its channel message shows it: the
/// columns of [`NOTIFICATION_COLUMNS`] with the read flag always false (a
/// message is never marked read).
const MESSAGE_COLUMNS: &str = "n.notification_id, n.seq, n.notification_type, n.title, \
     n.message, n.ticket_id, n.ticket_key, n.project_id, n.occurred_at, false";

/// The user's notifications with seq > `after_seq`, oldest first, unread
/// (as their channel messages show them).
pub(super) async fn notifications_since(
    client: &ClientWrapper,
    user_id: Uuid,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<Notification>, StoreError> {
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM rm_notifications n
         WHERE n.user_id = $1 AND n.seq > $2 ORDER BY n.seq LIMIT $3"
    );
    let rows = prepared::query(client, &sql, &[&user_id, &after_seq, &limit]).await?;
    rows.iter().map(notification).collect()
}

pub(super) async fn ticket_messages(
    client: &ClientWrapper,
    project_id: Uuid,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<(i64, String)>, StoreError> {
    let rows = prepared::query(
        client,
        "SELECT seq, message FROM rm_ticket_messages
             WHERE project_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        &[&project_id, &after_seq, &limit],
    )
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

pub(super) async fn ticket_channel_head(
    client: &ClientWrapper,
    project_id: Uuid,
) -> Result<i64, StoreError> {
    let row = prepared::query_one(
        client,
        "SELECT coalesce(max(seq), 0) FROM rm_ticket_messages WHERE project_id = $1",
        &[&project_id],
    )
    .await?;
    Ok(row.try_get(0)?)
}

/// The heads of many projects' ticket channels, in the order asked: one
/// index probe each (max over the primary key).
pub(super) async fn ticket_channel_heads(
    client: &ClientWrapper,
    project_ids: &[Uuid],
) -> Result<Vec<i64>, StoreError> {
    let rows = prepared::query(
        client,
        "SELECT coalesce((SELECT max(seq) FROM rm_ticket_messages m WHERE m.project_id = u.id), 0)
         FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, n) ORDER BY u.n",
        &[&project_ids],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?)
}

fn notification(r: &Row) -> Result<Notification, StoreError> {
    let kind: String = r.try_get(2)?;
    Ok(Notification {
        id: r.try_get(0)?,
        seq: r.try_get(1)?,
        notification_type: kind
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("{e}")))?,
        title: r.try_get(3)?,
        message: r.try_get(4)?,
        ticket_id: r.try_get(5)?,
        ticket_key: r.try_get(6)?,
        project_id: r.try_get(7)?,
        timestamp: r.try_get(8)?,
        read: r.try_get(9)?,
    })
}

pub(super) async fn notification_head(
    client: &ClientWrapper,
    user_id: Uuid,
) -> Result<i64, StoreError> {
    let row = prepared::query_opt(
        client,
        "SELECT last_seq FROM rm_notification_heads WHERE user_id = $1",
        &[&user_id],
    )
    .await?;
    Ok(row.map_or(Ok(0), |r| r.try_get(0))?)
}

/// The heads of many users' notification channels, in the order asked.
pub(super) async fn notification_heads(
    client: &ClientWrapper,
    user_ids: &[Uuid],
) -> Result<Vec<i64>, StoreError> {
    let rows = prepared::query(
        client,
        "SELECT coalesce(h.last_seq, 0)
         FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, n)
         LEFT JOIN rm_notification_heads h ON h.user_id = u.id ORDER BY u.n",
        &[&user_ids],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?)
}

pub(super) async fn unread_count(client: &ClientWrapper, user_id: Uuid) -> Result<i64, StoreError> {
    let sql =
        format!("SELECT count(*) FROM {NOTIFICATION_JOINS} WHERE n.user_id = $1 AND {UNREAD}");
    Ok(prepared::query_one(client, &sql, &[&user_id])
        .await?
        .try_get(0)?)
}

pub(super) async fn mark_read(
    client: &ClientWrapper,
    user_id: Uuid,
    notification_id: Uuid,
) -> Result<bool, StoreError> {
    // A flag is stored only above the read-all mark: below it, it says nothing new.
    let row = prepared::query_one(
        client,
        "WITH found AS (
               SELECT n.notification_id, n.seq > coalesce(m.up_to_seq, 0) AS above_mark
               FROM rm_notifications n
               LEFT JOIN notification_read_marks m ON m.user_id = n.user_id
               WHERE n.notification_id = $2 AND n.user_id = $1),
             flagged AS (
               INSERT INTO notification_reads (user_id, notification_id)
               SELECT $1, notification_id FROM found WHERE above_mark
               ON CONFLICT DO NOTHING)
             SELECT count(*) FROM found",
        &[&user_id, &notification_id],
    )
    .await?;
    Ok(row.try_get::<_, i64>(0)? > 0)
}

pub(super) async fn mark_all_read(
    client: &ClientWrapper,
    user_id: Uuid,
) -> Result<i64, StoreError> {
    // The mark only moves forward; single flags it now covers are dropped.
    let row = prepared::query_one(
        client,
        "WITH head AS (
               SELECT coalesce(
                 (SELECT last_seq FROM rm_notification_heads WHERE user_id = $1), 0) AS seq),
             mark AS (
               INSERT INTO notification_read_marks AS m (user_id, up_to_seq)
               SELECT $1, seq FROM head
               ON CONFLICT (user_id) DO UPDATE
                 SET up_to_seq = greatest(m.up_to_seq, EXCLUDED.up_to_seq)
               RETURNING up_to_seq),
             pruned AS (
               DELETE FROM notification_reads r USING rm_notifications n, mark
               WHERE r.user_id = $1 AND n.notification_id = r.notification_id
                 AND n.user_id = $1 AND n.seq <= mark.up_to_seq)
             SELECT up_to_seq FROM mark",
        &[&user_id],
    )
    .await?;
    Ok(row.try_get(0)?)
}

pub(super) async fn checkpoint(client: &ClientWrapper, name: &str) -> Result<i64, StoreError> {
    let row = prepared::query_opt(
        client,
        "SELECT position FROM projection_checkpoints WHERE name = $1",
        &[&name],
    )
    .await?;
    Ok(row.map_or(Ok(0), |r| r.try_get(0))?)
}

pub(super) async fn checkpoints(client: &ClientWrapper) -> Result<Vec<(String, i64)>, StoreError> {
    let rows = prepared::query(
        client,
        "SELECT name, position FROM projection_checkpoints ORDER BY name",
        &[],
    )
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}
