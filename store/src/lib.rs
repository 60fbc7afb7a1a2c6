//! Storage for ticketflow: the event log and the small amount of plain state
//! around it (accounts, refresh tokens, idempotency records).
//!
//! Everything is reached through the traits in this crate, so the API never
//! names a database; [`pg::PgStore`] implements them on PostgreSQL, and
//! [`sqlite::SqliteStore`] on one SQLite file (the embedded mode). Either
//! feeds a [`Watch`] of the log's head and the projections' checkpoints.
//!
//! The event log's guarantees:
//! - a stream's versions are contiguous 1..N (compare-and-set on `streams`);
//! - global positions become visible in increasing order, with no late commit
//!   behind a reader's cursor (one counter row, locked until commit);
//! - a project's ticket events get a contiguous channel `seq`, and tickets a
//!   gap-free number, in the appending transaction.

mod accounts;
mod board;
pub mod chain;
mod error;
mod event_store;
mod filter;
mod idempotency;
pub mod metrics;
pub mod pg;
pub mod sqlite;
mod stream;
pub mod watch;

pub use accounts::{Accounts, NewUser, RefreshOutcome, User, UserWithHash};
pub use board::BoardSnapshot;
pub use chain::{ChainHead, Hash};
pub use error::StoreError;
pub use event_store::{
    Append, AsOf, Committed, EventStore, Loaded, Metadata, ProjectSummary, RawJson, StoredEvent,
    SNAPSHOT_EVERY,
};
pub use filter::{parse_types, Bound, EventFilter};
pub use idempotency::{Claim, CommandKey, CommittedCommand, IdempotencyStore, StoredResponse};
pub use watch::{Watch, WatchFeed};
