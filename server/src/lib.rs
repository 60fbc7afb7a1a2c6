//! Assembles a ticketflow process, in one of two modes:
//! - on PostgreSQL and NATS ([`Backend::services`]): any number of instances,
//!   roles spread as wished;
//! - embedded ([`Backend::embedded`]): SQLite files in a data directory and an
//!   in-process broker, one process running every role.
//!
//! Both hand the same API, projection and gateway code their storage and
//! broker through traits; only what is built here differs. The binary and
//! the test kit start servers through this library, so tests run what users
//! run.

mod backend;
mod data_dir;
pub mod metrics;
mod web;
mod workers;

pub use backend::{serve, Backend};
pub use data_dir::DataDir;
pub use metrics::{Metrics, MetricsArgs};
pub use ticketflow_app::Origins;
