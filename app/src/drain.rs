//! A process's graceful shutdown, as everything that must stop cleanly sees
//! it. Once the drain has begun (SIGTERM, Ctrl-C): readiness answers 503,
//! socket handshakes are refused, open sockets close with 1012 (service
//! restart) so their clients resume on another instance, `follow=true` feeds
//! end, and the relay and projection workers stop after their current batch.
//! The HTTP server meanwhile stops accepting and lets requests in flight
//! finish.

use std::future::Future;

use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tokio_util::task::task_tracker::TaskTrackerToken;
use tokio_util::task::TaskTracker;

/// A socket counted as open (see [`Drain::socket_opened`]) while this lives.
pub struct OpenSocket {
    _counted: TaskTrackerToken,
}

/// Cloned into everything that must stop cleanly; one [`Drain::begin`]
/// reaches them all.
#[derive(Clone, Default)]
pub struct Drain {
    begun: CancellationToken,
    /// The open sockets. Upgraded connections leave the HTTP server, whose
    /// graceful shutdown therefore does not wait for them: this does.
    sockets: TaskTracker,
}

impl Drain {
    /// Starts draining the process (idempotent).
    pub fn begin(&self) {
        self.begun.cancel();
    }

    /// Whether the drain has begun.
    pub fn has_begun(&self) -> bool {
        self.begun.is_cancelled()
    }

    /// Resolves once the drain has begun.
    pub fn begun(&self) -> WaitForCancellationFutureOwned {
        self.begun.clone().cancelled_owned()
    }

    /// `work`'s output, or `None` if the drain begins first (`work` is
    /// then dropped: it must be safe to stop where it waits).
    pub async fn unless_begun<F: Future>(&self, work: F) -> Option<F::Output> {
        self.begun.run_until_cancelled(work).await
    }

    /// The token the drain cancels, for the workers of the crates below this
    /// one, which take it as it is.
    pub fn token(&self) -> CancellationToken {
        self.begun.clone()
    }

    /// Counts a socket as open until the returned value is dropped.
    pub fn socket_opened(&self) -> OpenSocket {
        OpenSocket {
            _counted: self.sockets.token(),
        }
    }

    /// Resolves once every socket counted by [`Drain::socket_opened`] has
    /// closed, and none can open any more.
    pub async fn sockets_closed(&self) {
        self.sockets.close();
        self.sockets.wait().await;
    }

    /// Sockets open now.
    pub fn open_sockets(&self) -> usize {
        self.sockets.len()
    }
}
