//! Gauges read at each scrape: state this process can simply look at (the
//! log's head and the projections' checkpoints, as its [`Watch`] follows
//! them; its connection pool; its NATS connection), so nothing keeps them up
//! to date between scrapes.
//!
//! [`Watch`]: ticketflow_store::Watch

use crate::Backend;

/// The log's head: the position of its newest committed event.
pub const LOG_HEAD: &str = "ticketflow_log_head_position";
/// The position each projection has applied, by `projection`.
pub const CHECKPOINT: &str = "ticketflow_projection_checkpoint_position";
/// The log's head minus each projection's checkpoint, by `projection`.
pub const PROJECTION_LAG: &str = "ticketflow_projection_lag_events";
/// Connections the PostgreSQL pool holds open.
pub const POOL_CONNECTIONS: &str = "ticketflow_postgres_pool_connections";
/// Of those, how many are idle.
pub const POOL_IDLE: &str = "ticketflow_postgres_pool_idle_connections";
/// The most connections the pool opens (`DATABASE_POOL_SIZE`).
pub const POOL_MAX: &str = "ticketflow_postgres_pool_max_connections";
/// Callers waiting for a connection.
pub const POOL_WAITING: &str = "ticketflow_postgres_pool_waiting_requests";
/// Always 1, labelled with the `version`, `revision` and `mode` (embedded,
/// postgres+nats, postgres).
pub const BUILD_INFO: &str = "ticketflow_build_info";

/// Sets every gauge of this module from `backend` as it is now.
pub(super) fn record(backend: &Backend) {
    log_and_projections(backend);
    if let Some(store) = backend.postgres() {
        let pool = store.pool().status();
        metrics::gauge!(POOL_CONNECTIONS).set(pool.size as f64);
        metrics::gauge!(POOL_IDLE).set(pool.available as f64);
        metrics::gauge!(POOL_MAX).set(pool.max_size as f64);
        metrics::gauge!(POOL_WAITING).set(pool.waiting as f64);
    }
    if let Some(bus) = backend.bus() {
        let up = if bus.is_connected() { 1.0 } else { 0.0 };
        metrics::gauge!(ticketflow_nats::metrics::NATS_UP).set(up);
    }
    metrics::gauge!(
        BUILD_INFO,
        "version" => env!("CARGO_PKG_VERSION"),
        "revision" => env!("TICKETFLOW_REVISION"),
        "mode" => backend.mode(),
    )
    .set(1.0);
}

/// Every read model's checkpoint and lag, 0 for one that has applied
/// nothing yet.
fn log_and_projections(backend: &Backend) {
    let head = *backend.watch.head.borrow();
    metrics::gauge!(LOG_HEAD).set(head as f64);
    let checkpoints = backend.watch.checkpoints.borrow();
    for name in ticketflow_projections::names() {
        let at = checkpoints.get(name).copied().unwrap_or(0);
        metrics::gauge!(CHECKPOINT, "projection" => name).set(at as f64);
        let lag = head.saturating_sub(at).max(0);
        metrics::gauge!(PROJECTION_LAG, "projection" => name).set(lag as f64);
    }
}
