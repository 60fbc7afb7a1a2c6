//! What the store tells operators, through the `metrics` facade (the binary
//! installs the Prometheus recorder): how long appends take and how they
//! end, how much each group commit carries, and whether PostgreSQL answers.
//! Both backends record the same names.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::stream::StreamKind;
use crate::StoreError;

/// Seconds from an append's call to its outcome (queueing for the group
/// commit included), by `stream` (ticket, project, inbox).
pub const APPEND_SECONDS: &str = "ticketflow_append_duration_seconds";
/// Appends by `stream` and `outcome` (ok, conflict, error).
pub const APPENDS: &str = "ticketflow_appends_total";
/// Writes per group commit (PostgreSQL: ticket appends; SQLite: every write).
pub const GROUP_COMMIT_WRITES: &str = "ticketflow_group_commit_writes";
/// Seconds one group commit takes, from its first statement to its commit.
pub const GROUP_COMMIT_SECONDS: &str = "ticketflow_group_commit_duration_seconds";
/// 1 while PostgreSQL answers the log-head poll (every 250 ms), else 0.
pub const POSTGRES_UP: &str = "ticketflow_postgres_up";
/// 1 while this process leads `role` (relay, projections), else 0.
pub const LEADER: &str = "ticketflow_leader";

/// Runs the append `operation` to a stream of kind `A`, timing and counting it.
pub(crate) async fn append<A: StreamKind, T>(
    operation: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let started = Instant::now();
    let result = operation.await;
    let stream = A::STREAM_TYPE;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(StoreError::VersionConflict { .. } | StoreError::ProjectMoved { .. }) => "conflict",
        Err(_) => "error",
    };
    metrics::histogram!(APPEND_SECONDS, "stream" => stream).record(started.elapsed());
    metrics::counter!(APPENDS, "stream" => stream, "outcome" => outcome).increment(1);
    result
}

/// Records a group commit of `writes` that took `took`.
pub(crate) fn group_commit(writes: usize, took: Duration) {
    metrics::histogram!(GROUP_COMMIT_WRITES).record(writes as f64);
    metrics::histogram!(GROUP_COMMIT_SECONDS).record(took);
}

/// Records whether PostgreSQL just answered.
pub(crate) fn postgres_answered(up: bool) {
    metrics::gauge!(POSTGRES_UP).set(if up { 1.0 } else { 0.0 });
}

/// The gauge saying whether this process leads `role`.
pub(crate) fn leader(role: &str) -> metrics::Gauge {
    metrics::gauge!(LEADER, "role" => role.to_string())
}
