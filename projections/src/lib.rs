//! Read models built from the event log.
//!
//! A [`Projection`] turns events into rows of tables it owns. Each projection
//! keeps its last applied global position in `projection_checkpoints`, written
//! in the same transaction as its rows, so an event delivered twice (JetStream
//! delivers at least once) is applied once, and a restart resumes exactly
//! where the last commit left off.
//!
//! Projections decide what to write; a [`ReadStore`] persists it and answers
//! the reads, on PostgreSQL ([`pg`]) or on SQLite ([`sqlite`]), so both run
//! the same projection code.
//!
//! - [`read_store`]: the storage traits and the rows they take;
//! - [`checkpoint`]: applying a batch exactly once, a live worker's with the
//!   ticket states it remembers ([`Remembered`]);
//! - [`TicketsProjection`], [`CommentsProjection`], [`NotificationsProjection`],
//!   [`TicketChannelProjection`]: the read models ([`all`] lists them);
//! - [`messages`]: the WebSocket channel messages the projections store,
//!   rendered once, so a live message and its replay are the same bytes;
//! - [`rebuild`](rebuild::rebuild): replaying the whole log into fresh tables
//!   and swapping them in atomically (PostgreSQL);
//! - [`queries`]: the shapes the read API gets back;
//! - [`worker`]: the projection worker that feeds them all, from the
//!   JetStream consumer or, embedded, from the log itself.

pub mod checkpoint;
mod comments;
pub mod messages;
mod notifications;
pub mod pg;
pub mod queries;
pub mod read_store;
pub mod rebuild;
mod remembered;
pub mod sqlite;
mod ticket_channel;
mod ticket_states;
mod tickets;
pub mod worker;

use std::sync::Arc;

use async_trait::async_trait;
use ticketflow_store::{StoreError, StoredEvent};

pub use checkpoint::{apply_batch, apply_batch_together, Applied, Outcome};
pub use comments::CommentsProjection;
pub use messages::ChannelMessage;
pub use notifications::{notification_id, NotificationsProjection};
pub use pg::PgReadStore;
pub use queries::{Comment, Notification};
pub use read_store::{BatchTx, ReadStore, ReadTx, RowWrites};
pub use rebuild::{rebuild, Progress, Rebuilt};
pub use remembered::Remembered;
pub use sqlite::SqliteReadStore;
pub use ticket_channel::TicketChannelProjection;
pub use tickets::TicketsProjection;

/// The names of a projection's PostgreSQL tables: the live ones, or the
/// fresh copies a rebuild fills before swapping them in.
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

    /// Whether these are the live tables, which the live worker writes
    /// (a rebuild's copies only the rebuild does).
    pub fn is_live(&self) -> bool {
        self.suffix.is_empty()
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
    /// by one would, wherever the batch boundaries fall, and hands `tx` a
    /// batch of rows per table, not a row per event (PostgreSQL writes each
    /// batch with one statement): that is what makes replaying the log fast.
    ///
    /// Returns the channel messages it stored, in position order (so each
    /// channel's in seq order), exactly as a replay reads them back: what
    /// the live worker publishes once the transaction has committed. Most
    /// projections store none.
    async fn apply(
        &self,
        tx: &mut dyn ReadTx,
        events: &[&StoredEvent],
    ) -> Result<Vec<ChannelMessage>, StoreError>;

    /// The owned tables this projection only ever inserts into: no upsert,
    /// no lookup, no `ON CONFLICT` with a conflict target while applying (a
    /// bare `ON CONFLICT DO NOTHING` needs no index). A (PostgreSQL) rebuild
    /// fills their copies without any index and builds the indexes
    /// afterwards, which is much faster; other copies keep their primary key
    /// while they fill.
    fn insert_only(&self) -> &'static [&'static str] {
        &[]
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

/// The names of the read models, in the order X-Min-Position checks them.
pub fn names() -> Vec<&'static str> {
    all().iter().map(|p| p.name()).collect()
}

/// The projection called `name`, if any.
pub fn by_name(name: &str) -> Option<Arc<dyn Projection>> {
    all().into_iter().find(|p| p.name() == name)
}
