//! Background roles: the outbox relay ([`relay`]) and the projection workers
//! ([`projector`]).
//!
//! Each runs as a single active instance per database, elected with a
//! PostgreSQL session advisory lock held on a dedicated connection: other
//! instances wait as standbys and take over within [`STANDBY_POLL`] when the
//! leader's connection closes (its process died). Order matters to both
//! roles, so one writer at a time is the design, not a limitation.

pub mod leader;
pub mod projector;
pub mod relay;

use std::time::Duration;

/// How often a standby tries to become the leader.
pub const STANDBY_POLL: Duration = Duration::from_secs(1);
