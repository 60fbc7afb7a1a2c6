//! The writes of a batch on PostgreSQL: set-based, one statement per table
//! and batch, the rows sent as one array per column; into a rebuild's
//! copies, one binary `COPY` per table and batch where the rows are new.

use std::collections::HashMap;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use deadpool_postgres::ClientWrapper;
use ticketflow_domain::{Actor, Ticket};
use ticketflow_store::pg::prepared;
use ticketflow_store::pg::NOTIFY_CHECKPOINT;
use ticketflow_store::StoreError;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{Json, ToSql, Type};
use uuid::Uuid;

use crate::read_store::{CommentRow, MessageRow, NotificationRow, TicketRow};
use crate::Tables;

/// The columns a write fills, with their types, in the order it sends them.
type Columns = &'static [(&'static str, Type)];

const COMMENT_COLUMNS: Columns = &[
    ("comment_id", Type::UUID),
    ("ticket_id", Type::UUID),
    ("project_id", Type::UUID),
    ("version", Type::INT8),
    ("author", Type::JSONB),
    ("body", Type::TEXT),
    ("created_at", Type::TIMESTAMPTZ),
];

const NOTIFICATION_COLUMNS: Columns = &[
    ("notification_id", Type::UUID),
    ("user_id", Type::UUID),
    ("seq", Type::INT8),
    ("notification_type", Type::TEXT),
    ("title", Type::TEXT),
    ("message", Type::TEXT),
    ("ticket_id", Type::UUID),
    ("ticket_key", Type::TEXT),
    ("project_id", Type::UUID),
    ("occurred_at", Type::TIMESTAMPTZ),
    ("event_id", Type::UUID),
    ("position", Type::INT8),
];

const MESSAGE_COLUMNS: Columns = &[
    ("project_id", Type::UUID),
    ("seq", Type::INT8),
    ("position", Type::INT8),
    ("message", Type::TEXT),
];

const TICKET_COLUMNS: Columns = &[
    ("ticket_id", Type::UUID),
    ("project_id", Type::UUID),
    ("number", Type::INT8),
    ("status_id", Type::INT8),
    ("assignee_id", Type::UUID),
    ("deleted", Type::BOOL),
    ("state", Type::JSON),
    ("last_position", Type::INT8),
];

const STATE_COLUMNS: Columns = &[("ticket_id", Type::UUID), ("state", Type::JSON)];

/// `INSERT INTO <table> (<columns>) SELECT unnest($1::<type>[]), ...`: the
/// rows of a set-based write, one array per column, all equally long.
/// Unnested in the select list they run in lockstep and stream into the
/// insert; `UNNEST` in `FROM` would first materialise every row (a quarter
/// slower for a rebuild's batches).
fn insert_unnest(table: &str, columns: Columns) -> String {
    let unnest: Vec<String> = columns
        .iter()
        .zip(1..)
        .map(|((_, t), i)| format!("unnest(${i}::{}[])", t.name()))
        .collect();
    format!(
        "INSERT INTO {table} ({}) SELECT {}",
        column_names(columns),
        unnest.join(", ")
    )
}

fn column_names(columns: Columns) -> String {
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    names.join(", ")
}

/// One binary `COPY` into a table, a row at a time. Cheaper for PostgreSQL
/// than the same rows inserted (no plan, no arrays to take apart), but it
/// has no `ON CONFLICT`: only for rows that cannot be there yet, as in a
/// rebuild's copies, which nobody else writes and which get each event of
/// the log once. The values go in PostgreSQL's binary form, so no text is
/// ever escaped.
struct CopyIn {
    writer: Pin<Box<BinaryCopyInWriter>>,
    width: usize,
}

impl CopyIn {
    async fn start(
        client: &ClientWrapper,
        table: &str,
        columns: Columns,
    ) -> Result<Self, StoreError> {
        let sql = format!(
            "COPY {table} ({}) FROM STDIN (FORMAT binary)",
            column_names(columns)
        );
        let sink = client.copy_in(&sql).await?;
        let types: Vec<Type> = columns.iter().map(|(_, t)| t.clone()).collect();
        Ok(Self {
            writer: Box::pin(BinaryCopyInWriter::new(sink, &types)),
            width: columns.len(),
        })
    }

    async fn row(&mut self, values: &[&(dyn ToSql + Sync)]) -> Result<(), StoreError> {
        // The writer panics on a row of the wrong width.
        if values.len() != self.width {
            return Err(StoreError::Corrupt(format!(
                "a COPY row of {} values for {} columns",
                values.len(),
                self.width
            )));
        }
        Ok(self.writer.as_mut().write(values).await?)
    }

    /// Ends the `COPY`; until then the rows are not written.
    async fn finish(mut self) -> Result<(), StoreError> {
        self.writer.as_mut().finish().await?;
        Ok(())
    }
}

pub(super) async fn load_states(
    client: &ClientWrapper,
    table: &str,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, Ticket)>, StoreError> {
    let sql = format!("SELECT ticket_id, state FROM {table} WHERE ticket_id = ANY($1)");
    prepared::query(client, &sql, &[&ids])
        .await?
        .iter()
        .map(|row| {
            let Json(state): Json<Ticket> = row.try_get(1)?;
            Ok((row.try_get(0)?, state))
        })
        .collect()
}

pub(super) async fn save_states(
    client: &ClientWrapper,
    table: &str,
    states: &[&Ticket],
) -> Result<(), StoreError> {
    let ids: Vec<Uuid> = states.iter().map(|s| s.id).collect();
    let states: Vec<Json<&Ticket>> = states.iter().map(|s| Json(*s)).collect();
    let sql = format!(
        "{} ON CONFLICT (ticket_id) DO UPDATE SET state = EXCLUDED.state",
        insert_unnest(table, STATE_COLUMNS)
    );
    prepared::execute(client, &sql, &[&ids, &states]).await?;
    Ok(())
}

pub(super) async fn drop_states(
    client: &ClientWrapper,
    table: &str,
    ids: &[Uuid],
) -> Result<(), StoreError> {
    let sql = format!("DELETE FROM {table} WHERE ticket_id = ANY($1)");
    prepared::execute(client, &sql, &[&ids]).await?;
    Ok(())
}

pub(super) async fn upsert_tickets(
    client: &ClientWrapper,
    tables: &Tables,
    rows: &[TicketRow<'_>],
) -> Result<(), StoreError> {
    let mut columns = TicketColumns::default();
    for row in rows {
        columns.push(row.state, row.position);
    }
    let sql = format!(
        "{} ON CONFLICT (ticket_id) DO UPDATE SET
           project_id = EXCLUDED.project_id, number = EXCLUDED.number,
           status_id = EXCLUDED.status_id, assignee_id = EXCLUDED.assignee_id,
           deleted = EXCLUDED.deleted, state = EXCLUDED.state,
           last_position = EXCLUDED.last_position",
        insert_unnest(&tables.name("rm_tickets"), TICKET_COLUMNS)
    );
    let c = &columns;
    prepared::execute(
        client,
        &sql,
        &[
            &c.ids,
            &c.project_ids,
            &c.numbers,
            &c.status_ids,
            &c.assignee_ids,
            &c.deleted,
            &c.states,
            &c.positions,
        ],
    )
    .await?;
    Ok(())
}

/// The columns of `rm_tickets` rows, one array each, for one set-based upsert.
#[derive(Default)]
struct TicketColumns<'a> {
    ids: Vec<Uuid>,
    project_ids: Vec<Uuid>,
    numbers: Vec<i64>,
    status_ids: Vec<Option<i64>>,
    assignee_ids: Vec<Option<Uuid>>,
    deleted: Vec<bool>,
    states: Vec<Json<&'a Ticket>>,
    positions: Vec<i64>,
}

impl<'a> TicketColumns<'a> {
    fn push(&mut self, state: &'a Ticket, position: i64) {
        self.ids.push(state.id);
        self.project_ids.push(state.project_id);
        self.numbers.push(state.number as i64);
        self.status_ids.push(state.status.as_ref().map(|s| s.id));
        self.assignee_ids
            .push(state.assignee.as_ref().map(|a| a.id));
        self.deleted.push(state.deleted);
        self.states.push(Json(state));
        self.positions.push(position);
    }
}

pub(super) async fn insert_comments(
    client: &ClientWrapper,
    tables: &Tables,
    rows: &[CommentRow<'_>],
) -> Result<(), StoreError> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.comment_id).collect();
    let ticket_ids: Vec<Uuid> = rows.iter().map(|r| r.ticket_id).collect();
    let project_ids: Vec<Uuid> = rows.iter().map(|r| r.project_id).collect();
    let versions: Vec<i64> = rows.iter().map(|r| r.version).collect();
    let authors: Vec<Json<&Actor>> = rows.iter().map(|r| Json(r.author)).collect();
    let bodies: Vec<&str> = rows.iter().map(|r| r.body.as_str()).collect();
    let created_at: Vec<DateTime<Utc>> = rows.iter().map(|r| r.created_at).collect();
    // No conflict target: a rebuild's copy has no index while it fills
    // (see `Projection::insert_only`).
    let sql = format!(
        "{} ON CONFLICT DO NOTHING",
        insert_unnest(&tables.name("rm_comments"), COMMENT_COLUMNS)
    );
    prepared::execute(
        client,
        &sql,
        &[
            &ids,
            &ticket_ids,
            &project_ids,
            &versions,
            &authors,
            &bodies,
            &created_at,
        ],
    )
    .await?;
    Ok(())
}

/// One statement moves every head and returns them; the rows it touches
/// stay locked until commit, taken in user order (`ORDER BY 1`) so two
/// writers take turns rather than deadlock.
pub(super) async fn advance_heads(
    client: &ClientWrapper,
    tables: &Tables,
    added: &[(Uuid, i64)],
) -> Result<Vec<(Uuid, i64)>, StoreError> {
    let (users, counts): (Vec<Uuid>, Vec<i64>) = added.iter().copied().unzip();
    let heads = tables.name("rm_notification_heads");
    let sql = format!(
        "INSERT INTO {heads} AS h (user_id, last_seq)
         SELECT unnest($1::uuid[]), unnest($2::bigint[]) ORDER BY 1
         ON CONFLICT (user_id) DO UPDATE SET last_seq = h.last_seq + EXCLUDED.last_seq
         RETURNING user_id, last_seq"
    );
    prepared::query(client, &sql, &[&users, &counts])
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

pub(super) async fn insert_notifications(
    client: &ClientWrapper,
    tables: &Tables,
    rows: &[NotificationRow<'_>],
) -> Result<(), StoreError> {
    let c = NotificationColumns::of(rows);
    let sql = insert_unnest(&tables.name("rm_notifications"), NOTIFICATION_COLUMNS);
    prepared::execute(
        client,
        &sql,
        &[
            &c.ids,
            &c.user_ids,
            &c.seqs,
            &c.types,
            &c.titles,
            &c.messages,
            &c.ticket_ids,
            &c.ticket_keys,
            &c.project_ids,
            &c.occurred_at,
            &c.event_ids,
            &c.positions,
        ],
    )
    .await?;
    Ok(())
}

/// The columns of `rm_notifications` rows, one array each, for one set-based insert.
#[derive(Default)]
struct NotificationColumns<'a> {
    ids: Vec<Uuid>,
    user_ids: Vec<Uuid>,
    seqs: Vec<i64>,
    types: Vec<&'static str>,
    titles: Vec<&'a str>,
    messages: Vec<&'a str>,
    ticket_ids: Vec<Option<Uuid>>,
    ticket_keys: Vec<Option<&'a str>>,
    project_ids: Vec<Option<Uuid>>,
    occurred_at: Vec<DateTime<Utc>>,
    event_ids: Vec<Uuid>,
    positions: Vec<i64>,
}

impl<'a> NotificationColumns<'a> {
    fn of(rows: &[NotificationRow<'a>]) -> Self {
        let mut c = Self::default();
        for r in rows {
            c.ids.push(r.notification_id);
            c.user_ids.push(r.user_id);
            c.seqs.push(r.seq);
            c.types.push(r.notification_type.as_str());
            c.titles.push(r.title);
            c.messages.push(r.message);
            c.ticket_ids.push(r.ticket_id);
            c.ticket_keys.push(r.ticket_key);
            c.project_ids.push(r.project_id);
            c.occurred_at.push(r.occurred_at);
            c.event_ids.push(r.event_id);
            c.positions.push(r.position);
        }
        c
    }
}

pub(super) async fn insert_ticket_messages(
    client: &ClientWrapper,
    tables: &Tables,
    rows: &[MessageRow],
) -> Result<(), StoreError> {
    let project_ids: Vec<Uuid> = rows.iter().map(|r| r.project_id).collect();
    let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    let positions: Vec<i64> = rows.iter().map(|r| r.position).collect();
    let messages: Vec<&str> = rows.iter().map(|r| r.message.as_str()).collect();
    // No conflict target: the primary key is the table's one unique index,
    // and a rebuild's copy, which has none while it fills, takes the rows
    // without any (see `Projection::insert_only`).
    let sql = format!(
        "{} ON CONFLICT DO NOTHING",
        insert_unnest(&tables.name("rm_ticket_messages"), MESSAGE_COLUMNS)
    );
    prepared::execute(client, &sql, &[&project_ids, &seqs, &positions, &messages]).await?;
    Ok(())
}

/// Locks the checkpoint rows of `names` until the transaction ends, in name
/// order, creating missing ones at 0 first, and returns their positions in
/// the order of `names`.
///
/// One statement: the upsert's row locks are what make two workers (or a
/// worker and a rebuild's swap) take turns, and it returns every row even
/// when another transaction creates one at the same moment. (An `INSERT …
/// DO NOTHING` pipelined with a `SELECT … FOR UPDATE`, each prepared on first
/// use, relied on the two reaching the server in order; about one test run
/// in 40 saw the select find no row.)
pub(super) async fn lock_checkpoints(
    client: &ClientWrapper,
    names: &[&str],
) -> Result<Vec<i64>, StoreError> {
    let mut sorted = names.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let rows = prepared::query(
        client,
        "INSERT INTO projection_checkpoints AS c (name, position)
         SELECT unnest($1::text[]), 0
         ON CONFLICT (name) DO UPDATE SET position = c.position
         RETURNING name, position",
        &[&sorted],
    )
    .await?;
    let mut at = HashMap::with_capacity(rows.len());
    for row in rows {
        at.insert(row.try_get::<_, String>(0)?, row.try_get::<_, i64>(1)?);
    }
    names
        .iter()
        .map(|name| {
            at.get(*name)
                .copied()
                .ok_or_else(|| StoreError::Unavailable(format!("checkpoint {name} was not locked")))
        })
        .collect()
}

/// Moves the checkpoints, and tells every instance's watchers
/// (X-Min-Position waits on them) once the transaction commits: a `NOTIFY`
/// is delivered at commit, so nobody hears of rows they cannot read yet.
pub(super) async fn set_checkpoints(
    client: &ClientWrapper,
    moves: &[(&str, i64)],
) -> Result<(), StoreError> {
    let (names, positions): (Vec<&str>, Vec<i64>) = moves.iter().copied().unzip();
    let sql = format!(
        "WITH moved AS (
           UPDATE projection_checkpoints c SET position = m.position, updated_at = now()
           FROM unnest($1::text[], $2::bigint[]) AS m(name, position)
           WHERE c.name = m.name
           RETURNING c.name, c.position
         )
         SELECT {NOTIFY_CHECKPOINT} FROM moved"
    );
    prepared::execute(client, &sql, &[&names, &positions]).await?;
    Ok(())
}

/// [`insert_comments`] into a rebuild's copy ([`CopyIn`]).
pub(super) async fn copy_comments(
    client: &ClientWrapper,
    tables: &Tables,
    rows: &[CommentRow<'_>],
) -> Result<(), StoreError> {
    let table = tables.name("rm_comments");
    let mut copy = CopyIn::start(client, &table, COMMENT_COLUMNS).await?;
    for r in rows {
        copy.row(&[
            &r.comment_id,
            &r.ticket_id,
            &r.project_id,
            &r.version,
            &Json(r.author),
            &r.body,
            &r.created_at,
        ])
        .await?;
    }
    copy.finish().await
}

/// [`insert_notifications`] into a rebuild's copy ([`CopyIn`]).
pub(super) async fn copy_notifications(
    client: &ClientWrapper,
    tables: &Tables,
    rows: &[NotificationRow<'_>],
) -> Result<(), StoreError> {
    let table = tables.name("rm_notifications");
    let mut copy = CopyIn::start(client, &table, NOTIFICATION_COLUMNS).await?;
    for r in rows {
        copy.row(&[
            &r.notification_id,
            &r.user_id,
            &r.seq,
            &r.notification_type.as_str(),
            &r.title,
            &r.message,
            &r.ticket_id,
            &r.ticket_key,
            &r.project_id,
            &r.occurred_at,
            &r.event_id,
            &r.position,
        ])
        .await?;
    }
    copy.finish().await
}

/// [`insert_ticket_messages`] into a rebuild's copy ([`CopyIn`]).
pub(super) async fn copy_ticket_messages(
    client: &ClientWrapper,
    tables: &Tables,
    rows: &[MessageRow],
) -> Result<(), StoreError> {
    let table = tables.name("rm_ticket_messages");
    let mut copy = CopyIn::start(client, &table, MESSAGE_COLUMNS).await?;
    for r in rows {
        copy.row(&[&r.project_id, &r.seq, &r.position, &r.message])
            .await?;
    }
    copy.finish().await
}
