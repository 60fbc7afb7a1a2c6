//! Read models built from the event log.
//!
//! A [`Projection`] turns events into rows of tables it owns. Each projection
//! keeps its last applied global position in `projection_checkpoints`, written
//! in the same transaction as its rows, so an event delivered twice (JetStream
//! delivers at least once) is applied once, and a restart resumes exactly
//! where the last commit left off.
//!
//! - [`checkpoint`]: applying a batch exactly once, and reading checkpoints;
//! - [`TicketsProjection`], [`CommentsProjection`], [`NotificationsProjection`],
//!   [`TicketChannelProjection`]: the read models ([`all`] lists them);
//! - [`messages`]: the WebSocket channel messages the projections store,
//!   rendered once, so a live message and its replay are the same bytes;
//! - [`rebuild`](rebuild::rebuild): replaying the whole log into fresh tables
//!   and swapping them in atomically;
//! - [`queries`]: what the read API asks of the tables.

pub mod checkpoint;
mod comments;
pub mod messages;
mod notifications;
pub mod queries;
pub mod rebuild;
mod ticket_channel;
mod tickets;

use std::sync::Arc;

use async_trait::async_trait;
use ticketflow_domain::{Ticket, TicketEvent, TicketPayload};
use ticketflow_store::{StoreError, StoredEvent};
use tokio_postgres::{Client, Transaction};
use uuid::Uuid;

pub use checkpoint::{apply_batch, checkpoint, checkpoints, Applied};
pub use comments::CommentsProjection;
pub use messages::{Channel, ChannelMessage};
pub use notifications::{notification_id, NotificationsProjection};
pub use queries::{Comment, Notification};
pub use rebuild::{rebuild, Progress, Rebuilt};
pub use ticket_channel::TicketChannelProjection;
pub use tickets::TicketsProjection;

/// The names to use for a projection's tables: the live ones, or the fresh
/// copies a rebuild fills before swapping them in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    /// Appended to every owned table name ("" for the live tables).
    pub suffix: String,
}

impl Tables {
    pub fn live() -> Self {
        Self {
            suffix: String::new(),
        }
    }

    /// The copies a rebuild fills.
    pub fn rebuild() -> Self {
        Self {
            suffix: "_rebuild".to_string(),
        }
    }

    /// The name to use for the owned table `base`.
    pub fn name(&self, base: &str) -> String {
        format!("{base}{}", self.suffix)
    }
}

#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// Stable name: checkpoint key, JetStream consumer name, CLI argument.
    fn name(&self) -> &'static str;

    /// The tables this projection owns; a rebuild recreates and swaps them together.
    fn tables(&self) -> &'static [&'static str];

    /// Applies one event (of any type; ignore what does not concern you).
    async fn apply(
        &self,
        tx: &Transaction<'_>,
        tables: &Tables,
        event: &StoredEvent,
    ) -> Result<(), StoreError>;

    /// The channel messages the events with position in `(after, upto]`
    /// produced, read from the live tables: what the projection worker
    /// publishes right after committing those events. Ordered by position,
    /// so each channel's messages come in seq order. Most projections
    /// produce none.
    async fn messages(
        &self,
        client: &Client,
        after: i64,
        upto: i64,
    ) -> Result<Vec<ChannelMessage>, StoreError> {
        let _ = (client, after, upto);
        Ok(Vec::new())
    }
}

/// Every projection, in the order a worker should start them.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(TicketsProjection),
        Arc::new(CommentsProjection),
        Arc::new(NotificationsProjection),
        Arc::new(TicketChannelProjection),
    ]
}

/// The projection called `name`, if any.
pub fn by_name(name: &str) -> Option<Arc<dyn Projection>> {
    all().into_iter().find(|p| p.name() == name)
}

/// A ticket event this projection has not applied yet, with the ticket's
/// state before it (kept in `table`, a `ticket_id`, `state` table). `None`
/// for other events, and for one the state already contains: its version
/// says which events it has seen, a guard besides the checkpoint.
async fn unseen_ticket_event(
    tx: &Transaction<'_>,
    table: &str,
    event: &StoredEvent,
) -> Result<Option<(Ticket, TicketEvent)>, StoreError> {
    if event.stream_type != "ticket" {
        return Ok(None);
    }
    let decoded = event.decode::<TicketPayload>()?;
    let state = stored_ticket(tx, table, event.stream_id).await?;
    if state.version as i64 >= event.version {
        return Ok(None);
    }
    Ok(Some((state, decoded)))
}

/// The ticket state kept in `table`, or the empty state before the
/// ticket's first event.
async fn stored_ticket(
    tx: &Transaction<'_>,
    table: &str,
    ticket_id: Uuid,
) -> Result<Ticket, StoreError> {
    let sql = format!("SELECT state FROM {table} WHERE ticket_id = $1");
    match tx.query_opt(&sql, &[&ticket_id]).await? {
        Some(row) => Ok(serde_json::from_value(row.try_get(0)?)?),
        None => Ok(Ticket::default()),
    }
}

/// Keeps `state` in `table`, or drops it once the ticket is deleted: no
/// event follows a deletion.
async fn keep_ticket(tx: &Transaction<'_>, table: &str, state: &Ticket) -> Result<(), StoreError> {
    if state.deleted {
        forget_ticket(tx, table, state.id).await
    } else {
        save_ticket(tx, table, state).await
    }
}

/// Stores `state` in `table` (a `ticket_id`, `state` table).
async fn save_ticket(tx: &Transaction<'_>, table: &str, state: &Ticket) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO {table} (ticket_id, state) VALUES ($1, $2)
         ON CONFLICT (ticket_id) DO UPDATE SET state = EXCLUDED.state"
    );
    tx.execute(&sql, &[&state.id, &serde_json::to_value(state)?])
        .await?;
    Ok(())
}

/// Drops the ticket's state from `table`.
async fn forget_ticket(
    tx: &Transaction<'_>,
    table: &str,
    ticket_id: Uuid,
) -> Result<(), StoreError> {
    let sql = format!("DELETE FROM {table} WHERE ticket_id = $1");
    tx.execute(&sql, &[&ticket_id]).await?;
    Ok(())
}
