//! The application layer: what HTTP handlers and WebSocket sessions both
//! stand on, so neither door reaches through the other.
//!
//! - [`AppState`]: the stores, read models, broker and caches of a process;
//! - [`command`]: running a command (load the aggregate, let the domain
//!   decide, append), with the [`Aggregates`] cache and per-stream turns;
//!   [`keyed`]: the Idempotency-Key it runs under; [`command_metrics`]:
//!   commands counted by kind and outcome;
//! - [`auth`], [`tokens`], [`password`]: who is calling; [`revocations`]:
//!   whose sessions have ended, in step across processes;
//! - [`membership`]: who may see a project and its tickets;
//! - [`board`]: a project's tickets as they stood at a moment, from the log;
//! - [`notifications`]: read marks, announced to the reader's sockets;
//! - [`Origins`]: which browser pages may use either door;
//! - [`rate_limits`]: how much each user, address and socket may ask;
//! - [`Drain`]: the process's graceful shutdown, seen by both doors;
//! - [`ApiError`]: the contract's error body, for both doors;
//! - [`params`], [`wording`]: reading query strings and headers strictly, and
//!   saying what a request got wrong in the client's terms.

mod aggregates;
pub mod auth;
pub mod board;
pub mod command;
pub mod command_metrics;
mod drain;
mod error;
#[cfg(feature = "openapi")]
pub mod error_docs;
pub mod keyed;
pub mod membership;
pub mod notices;
pub mod notifications;
mod origins;
pub mod params;
pub mod password;
pub mod rate_limits;
pub mod revocations;
pub mod tokens;
pub mod wording;

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use ticketflow_store::Watch;
use ticketflow_store::{Accounts, EventStore, IdempotencyStore};

pub use aggregates::Aggregates;
pub use auth::{bearer, AuthUser};
pub use command::{Outcome, TicketTarget};
pub use drain::{Drain, OpenSocket};
pub use error::{path_id, ApiError};
pub use origins::Origins;
pub use rate_limits::{RateLimiters, RateLimits};
pub use tokens::TokenKeys;

/// What every handler and socket shares. Axum clones the state for each extractor and
/// middleware of every request, so it is one shared allocation.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct Shared {
    /// The event log: commands append to it; reads load from it until the
    /// projections exist.
    pub events: Arc<dyn EventStore>,
    /// Accounts and refresh tokens.
    pub accounts: Arc<dyn Accounts>,
    /// First responses to keyed requests.
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// The JWT secret, decoded once.
    pub tokens: Arc<TokenKeys>,
    /// The read models: what GETs, sockets and read marks go to.
    pub reads: Arc<dyn ticketflow_projections::ReadStore>,
    /// The log's head and the read models' checkpoints, as they move.
    pub watch: Watch,
    /// The read models X-Min-Position waits for.
    pub read_models: Vec<&'static str>,
    /// Aggregates as last seen, so commands rarely load, and the per-stream
    /// turns of writers.
    pub aggregates: Arc<aggregates::Aggregates>,
    /// Where read marks are announced to the reader's sockets (absent when
    /// this process runs without a broker).
    pub broker: Option<ticketflow_nats::Broker>,
    /// The browser pages allowed to call the API and open sockets.
    pub origins: Origins,
    /// How much each user, address and socket may ask of this process.
    pub limits: Arc<RateLimiters>,
    /// The process's shutdown: sockets close, feeds end, handshakes are refused.
    pub drain: Drain,
    /// Fewest project events between two board snapshots (see [`board`]):
    /// small in tests, so that several exist.
    pub board_snapshot_every: u64,
}

/// The current time at the store's precision (microseconds), so a command's
/// response and a later read of the same event agree to the digit.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
