//! `serve`'s settings for readiness and graceful shutdown, and the signals
//! that begin the shutdown.

use std::time::Duration;

use clap::Args;

#[derive(Args)]
pub struct LifecycleArgs {
    /// Readiness fails while the relay or a projection this process runs is
    /// more than this many events behind the log's head.
    #[arg(long, env = "READY_MAX_LAG", default_value_t = 10_000,
          value_parser = clap::value_parser!(i64).range(0..))]
    pub ready_max_lag: i64,
    /// How long a graceful shutdown (SIGTERM, Ctrl-C) may take, in
    /// milliseconds, before whatever is left is stopped.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_MS", default_value_t = 10_000)]
    shutdown_timeout_ms: u64,
}

impl LifecycleArgs {
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }
}

/// Resolves on SIGTERM (what orchestrators send) or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => tracing::error!(error = %e, "cannot listen for SIGTERM"),
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
