//! The outbox relay: publishes committed events to JetStream in position
//! order, exactly once in the stream.
//!
//! Where to resume is read from the stream itself (the position of its last
//! message), not from a checkpoint that could lag behind a publish: after a
//! crash between publishing and recording, nothing is sent twice. A batch of
//! events is in flight at once, each message expecting its predecessor at the
//! end of the stream, so the stream never holds a later event without the
//! earlier ones (see [`Bus::publish_after`]). `Nats-Msg-Id` guards the rest
//! (two leaders overlapping for a moment).
//!
//! It stops when told (the process drains) between batches: the batch in
//! flight is stored in the stream whole, and the position relayed recorded,
//! before the leadership is let go for another instance to take.

use std::time::{Duration, Instant};

use ticketflow_store::pg::leader::{Leadership, STANDBY_POLL};
use ticketflow_store::pg::PgStore;
use ticketflow_store::EventStore;
use ticketflow_store::Watch;
use tokio_util::sync::CancellationToken;

use crate::{metrics, Bus};

const BATCH: i64 = 500;
/// Pause after a failure (NATS or PostgreSQL down) before trying again.
const BACKOFF: Duration = Duration::from_millis(500);
/// Idle wake-up, in case a notification was missed.
const IDLE: Duration = Duration::from_secs(1);
/// How often, at most, a busy relay records how far it got (for operators:
/// `ticketflow projections status`); an idle one records where it stopped.
/// Recording after every batch cost a commit, and a wait for its flush,
/// before the next batch could be read.
const RECORD_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error(transparent)]
    Bus(#[from] crate::BusError),
    #[error(transparent)]
    Store(#[from] ticketflow_store::StoreError),
    #[error("lost leadership")]
    Deposed,
}

pub struct Relay {
    pub store: PgStore,
    pub bus: Bus,
    pub watch: Watch,
}

impl Relay {
    /// Runs until `stop` is cancelled: standby until leader, then relays.
    pub async fn run(mut self, stop: CancellationToken) {
        // Where this process last saw the stream end, while it leads: how
        // far behind the log it is, even while NATS keeps it from going on.
        let mut published = None;
        while !stop.is_cancelled() {
            let Some(leadership) = Leadership::try_acquire(self.store.pool(), "relay").await else {
                // Another process leads: its lag is the one to read.
                if published.take().is_some() {
                    metrics::relay_standing_by();
                }
                stop.run_until_cancelled(tokio::time::sleep(STANDBY_POLL))
                    .await;
                continue;
            };
            tracing::info!(prefix = self.bus.prefix(), "relay is leading");
            match self.lead(&leadership, &stop, &mut published).await {
                Ok(()) => tracing::info!("relay stopped"),
                Err(e) => {
                    tracing::warn!(error = %e, "relay interrupted; resuming from the stream's tail");
                    if let Some(position) = published {
                        metrics::relay_at(position, self.head());
                    }
                    stop.run_until_cancelled(tokio::time::sleep(BACKOFF)).await;
                }
            }
        }
    }

    async fn lead(
        &mut self,
        leadership: &Leadership,
        stop: &CancellationToken,
        published: &mut Option<i64>,
    ) -> Result<(), RelayError> {
        let mut tail = self.bus.tail().await?;
        *published = Some(tail.position);
        let mut recorded = Recorded::default();
        while !stop.is_cancelled() {
            if !leadership.alive().await {
                return Err(RelayError::Deposed);
            }
            let batch = self.store.read_all(tail.position, BATCH).await?;
            if batch.is_empty() {
                metrics::relay_at(tail.position, self.head());
                recorded.record(&self.store, tail.position).await?;
                stop.run_until_cancelled(self.wait_for_commits(tail.position))
                    .await;
                continue;
            }
            tail = self.bus.publish_after(tail, &batch).await?;
            *published = Some(tail.position);
            metrics::relayed(batch.len(), tail.position, self.head());
            if recorded.at.is_none_or(|at| at.elapsed() >= RECORD_EVERY) {
                recorded.record(&self.store, tail.position).await?;
            }
        }
        // Where it stopped, for the next leader's operators and readiness.
        recorded.record(&self.store, tail.position).await
    }

    /// The log's head as this process last heard of it.
    fn head(&self) -> i64 {
        *self.watch.head.borrow()
    }

    /// Returns when the log has grown past `position`, or after [`IDLE`].
    async fn wait_for_commits(&mut self, position: i64) {
        let grown = self.watch.head.wait_for(|head| *head > position);
        let _ = tokio::time::timeout(IDLE, grown).await;
    }
}

/// The relayed position last recorded, and when.
#[derive(Default)]
struct Recorded {
    position: Option<i64>,
    at: Option<Instant>,
}

impl Recorded {
    /// Records `position` unless it is the one recorded last.
    async fn record(&mut self, store: &PgStore, position: i64) -> Result<(), RelayError> {
        if self.position != Some(position) {
            store.record_relayed(position).await?;
            self.position = Some(position);
        }
        self.at = Some(Instant::now());
        Ok(())
    }
}
