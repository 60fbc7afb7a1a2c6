//! The projection workers on PostgreSQL and NATS: every projection fed from
//! one durable JetStream pull consumer, led by one instance at a time
//! (elected like the relay; the others stand by).
//!
//! One consumer rather than one per projection: each event is delivered,
//! decoded and acknowledged once, not once per read model, which was most of
//! what the workers and NATS spent per event. The projections apply a batch
//! in one transaction, each moving its own checkpoint; the batch is
//! acknowledged once it has committed.

use std::time::Duration;

use deadpool_postgres::Pool;
use ticketflow_nats::Bus;
use ticketflow_store::pg::leader::{Leadership, STANDBY_POLL};
use tokio_util::sync::CancellationToken;

use super::{Projector, ProjectorError, BACKOFF, BATCH};

/// The durable consumer's name (and the leadership role's).
pub const CONSUMER: &str = "projections";
/// How long one fetch waits for messages before checking leadership again.
const FETCH_WAIT: Duration = Duration::from_millis(500);

pub struct StreamProjectors {
    pub projector: Projector,
}

impl StreamProjectors {
    /// Runs until `stop` is cancelled: standby until leader (elected on
    /// `election`), then projects what the stream delivers.
    pub async fn run(self, bus: Bus, election: Pool, stop: CancellationToken) {
        while !stop.is_cancelled() {
            let Some(leadership) = Leadership::try_acquire(&election, CONSUMER).await else {
                stop.run_until_cancelled(tokio::time::sleep(STANDBY_POLL))
                    .await;
                continue;
            };
            tracing::info!("projection workers are leading");
            match self.lead(&bus, &leadership, &stop).await {
                Ok(()) => tracing::info!("projection workers stopped"),
                Err(e) => {
                    tracing::warn!(error = %e, "projections interrupted");
                    stop.run_until_cancelled(tokio::time::sleep(BACKOFF)).await;
                }
            }
        }
    }

    /// Projects batch after batch while leading. A fetch is never cut short
    /// (messages it took would wait out the ack deadline before another
    /// instance got them): `stop` is looked at between batches.
    async fn lead(
        &self,
        bus: &Bus,
        leadership: &Leadership,
        stop: &CancellationToken,
    ) -> Result<(), ProjectorError> {
        let consumer = bus.durable_consumer(CONSUMER).await?;
        while !stop.is_cancelled() {
            if !leadership.alive().await {
                return Err(ProjectorError::Deposed);
            }
            let batch = consumer.fetch(BATCH, FETCH_WAIT).await?;
            if batch.is_empty() {
                continue;
            }
            if let Err(e) = self.projector.project(&batch.events).await {
                // What some projections committed, their checkpoints skip.
                batch.nak().await;
                return Err(e);
            }
            // Only after every commit.
            batch.ack().await?;
        }
        Ok(())
    }
}
