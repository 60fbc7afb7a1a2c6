//! A running process, and how it stops on SIGTERM or Ctrl-C: gracefully,
//! within a time limit.
//!
//! The drain begins (readiness answers 503 `draining`); at once and side by
//! side: the listener closes while requests in flight are answered (commands
//! run to their end), every socket is closed with 1012 so its client resumes
//! on another instance, and the relay and projection workers finish their
//! batch and let go of their leadership for a standby to take. What is left
//! after the time limit is stopped where it stands.

use std::time::Duration;

use axum::Router;
use futures::future::join_all;
use ticketflow_app::Drain;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A process's parts, as [`Running::stop`] stops them.
pub struct Running {
    drain: Drain,
    /// The HTTP server; it returns once it stopped accepting and every
    /// connection it holds finished.
    http: JoinHandle<std::io::Result<()>>,
    /// The relay and projection workers; they return after their batch.
    workers: Vec<JoinHandle<()>>,
    /// What serves the doors meanwhile (the gateway's subscriptions, which
    /// closing sockets still use to say they left; the revocations' feed):
    /// stopped last.
    tasks: Vec<JoinHandle<()>>,
}

/// The drain did not finish in time.
#[derive(Debug, thiserror::Error)]
#[error(
    "the drain did not finish within {limit:?} (open sockets left: {sockets}); \
     the rest was stopped"
)]
pub struct DrainTimedOut {
    limit: Duration,
    sockets: usize,
}

impl Running {
    /// Serves `app` on `listener` until the drain of `drain` begins;
    /// `workers` and `tasks` are the process's (see [`Running`]).
    pub fn start(
        drain: &Drain,
        listener: TcpListener,
        app: Router,
        workers: Vec<JoinHandle<()>>,
        tasks: Vec<JoinHandle<()>>,
    ) -> Self {
        let http = tokio::spawn(crate::serve(listener, app, drain.begun()));
        Self {
            drain: drain.clone(),
            http,
            workers,
            tasks,
        }
    }

    /// Drains the process, allowing it `limit`; whatever is still running
    /// then is aborted, and the error says so.
    pub async fn stop(self, limit: Duration) -> Result<(), DrainTimedOut> {
        let Self {
            drain,
            http,
            workers,
            tasks,
        } = self;
        drain.begin();
        tracing::info!(
            sockets = drain.open_sockets(),
            ?limit,
            "draining: no new connections; finishing requests, closing sockets (1012), \
             stopping workers after their batch"
        );
        let handles: Vec<_> = workers.iter().map(JoinHandle::abort_handle).collect();
        let http_handle = http.abort_handle();
        let drained = async {
            let http = async {
                match http.await {
                    Ok(Err(e)) => tracing::warn!(error = %e, "the HTTP server ended with an error"),
                    Err(e) if e.is_panic() => tracing::error!("the HTTP server panicked"),
                    _ => {}
                }
            };
            tokio::join!(http, drain.sockets_closed(), join_all(workers));
        };
        let outcome = tokio::time::timeout(limit, drained)
            .await
            .map_err(|_| DrainTimedOut {
                limit,
                sockets: drain.open_sockets(),
            });
        http_handle.abort();
        handles.iter().for_each(|h| h.abort());
        tasks.iter().for_each(JoinHandle::abort);
        if outcome.is_ok() {
            tracing::info!("drained");
        }
        outcome
    }
}
