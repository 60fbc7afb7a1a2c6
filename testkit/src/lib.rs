//! Test support for ticketflow's tests: one crate, dev-only, split by
//! features so a lower crate's tests build only what they need.
//!
//! - no features: [`cast`] (alice, bob, carol, dave; a fixed clock),
//!   [`builders`] (the commands and events of the domain's rules) and
//!   [`given`] (named given/when/then cases); [`prelude`] has all three.
//!   [`laws`]: what every aggregate's decisions obey, for property tests
//!   and fuzz targets. [`schemas`]: stored events checked against their
//!   JSON Schemas (the laws check each event; a test database, server data
//!   directory or SQLite backend checks its whole log when dropped).
//!   Nothing above `ticketflow-domain`: what the domain's tests use.
//! - `store`: [`TestDb`], a uniquely named database on the server named by
//!   `TEST_DATABASE_URL` (default: local PostgreSQL as user postgres),
//!   dropped afterwards, so tests never see each other's data and may run
//!   in parallel; [`fixtures`] (events appended through the store);
//!   [`backend`] (one contract test on both store backends,
//!   [`on_both_backends!`]); [`seed`] (a large realistic history);
//!   [`PrivatePostgres`], a cluster of the test's own to stop and start.
//! - `nats`: [`NatsServer`], a nats-server of the test's own.
//! - `projections`: [`world`], projections fed from a real log with their
//!   read models on either backend ([`on_each_backend!`]).
//! - `server`: [`TestServer`], the real router on a real TCP socket, with
//!   HTTP clients; [`Setup`] and the checks the HTTP tests share; [`ws`],
//!   WebSocket clients; [`process`], the binary in a process of its own;
//!   [`scrape`], `GET /metrics` parsed; [`OldTicketEvent`], rows as an
//!   older version of the code stored them, put beneath a server's store.

pub mod builders;
pub mod cast;
pub mod given;
pub mod laws;
pub mod schemas;

#[cfg(feature = "store")]
pub mod backend;
#[cfg(feature = "store")]
mod db;
#[cfg(feature = "store")]
pub mod fixtures;
#[cfg(feature = "server")]
mod http;
#[cfg(feature = "nats")]
mod nats;
#[cfg(feature = "server")]
mod old_events;
#[cfg(feature = "store")]
mod private_pg;
#[cfg(feature = "server")]
pub mod process;
pub mod scrape;
#[cfg(feature = "store")]
pub mod seed;
#[cfg(feature = "server")]
mod server;
#[cfg(feature = "projections")]
pub mod world;
#[cfg(feature = "server")]
pub mod ws;

#[cfg(feature = "store")]
pub use db::TestDb;
#[cfg(feature = "server")]
pub use http::*;
#[cfg(feature = "nats")]
pub use nats::NatsServer;
#[cfg(feature = "server")]
pub use old_events::OldTicketEvent;
#[cfg(feature = "store")]
pub use private_pg::PrivatePostgres;
#[cfg(feature = "server")]
pub use process::ServerProcess;
#[cfg(feature = "server")]
pub use server::*;

/// What the domain's rule tests use: `use ticketflow_testkit::prelude::*;`.
pub mod prelude {
    pub use crate::builders::*;
    pub use crate::cast::*;
    pub use crate::given::*;
}

/// Whether the integration suite runs embedded (`TICKETFLOW_TEST_MODE=embedded`:
/// SQLite files in a temporary data directory and the in-process broker) or,
/// by default, on PostgreSQL and NATS.
pub fn embedded_mode() -> bool {
    std::env::var("TICKETFLOW_TEST_MODE").is_ok_and(|mode| mode == "embedded")
}
