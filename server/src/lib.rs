//! Assembles a ticketflow process, in one of two modes:
//! - on PostgreSQL and NATS ([`Backend::services`]): any number of instances,
//!   roles spread as wished;
//! - embedded ([`Backend::embedded`]): SQLite files in a data directory and an
//!   in-process broker, one process running every role.
//!
//! Both hand the same API, projection and gateway code their storage and
//! broker through traits; only what is built here differs. The binary and
//! the test kit start servers through this library, so tests run what users
//! run. Every process answers `/healthz` and `/readyz` ([`health`]) and
//! stops gracefully ([`Running::stop`]).

mod backend;
mod data_dir;
pub mod health;
pub mod metrics;
pub mod openapi;
mod roles;
mod shutdown;
mod web;
mod workers;

pub use backend::{serve, Backend, Front};
pub use data_dir::DataDir;
pub use metrics::{Metrics, MetricsArgs};
pub use roles::Roles;
pub use shutdown::{DrainTimedOut, Running};
pub use ticketflow_app::{Drain, Origins, RateLimits};
