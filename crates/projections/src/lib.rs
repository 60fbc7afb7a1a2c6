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
mod ticket_states;
mod tickets;

use std::sync::Arc;

use async_trait::async_trait;
use ticketflow_store::{StoreError, StoredEvent};
use tokio_postgres::{Client, Transaction};

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

    /// Applies `events`, in position order and of any type (ignore what
    /// does not concern you), inside the caller's transaction: the live
    /// worker's batches and a rebuild's alike. Builds what applying them one
    /// by one would, wherever the batch boundaries fall, and writes set-based
    /// (a statement per table, not per event): that is what makes replaying
    /// the log fast.
    async fn apply(
        &self,
        tx: &Transaction<'_>,
        tables: &Tables,
        events: &[&StoredEvent],
    ) -> Result<(), StoreError>;

    /// The owned tables this projection only ever inserts into: no upsert,
    /// no lookup, no `ON CONFLICT` while applying. A rebuild fills their
    /// copies without any index and builds the indexes afterwards, which is
    /// much faster; other copies keep their primary key while they fill.
    fn insert_only(&self) -> &'static [&'static str] {
        &[]
    }

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

/// `SELECT unnest($1::<type>[]), unnest($2::<type>[]), ...`: the rows of a
/// set-based write, one array per column, all equally long. Unnested in the
/// select list they run in lockstep and stream into the insert; `UNNEST` in
/// `FROM` would first materialise every row (a quarter slower for a
/// rebuild's batches).
pub(crate) fn unnest_rows(types: &[&str]) -> String {
    let columns: Vec<String> = types
        .iter()
        .zip(1..)
        .map(|(t, i)| format!("unnest(${i}::{t}[])"))
        .collect();
    format!("SELECT {}", columns.join(", "))
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
