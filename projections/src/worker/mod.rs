//! The projection worker: applies the log to every projection's read model,
//! each batch in one transaction with the projections' checkpoints (one
//! commit per batch, not one per projection), then publishes the channel
//! messages the batch stored (as the projections rendered and stored them:
//! nothing is read back). How far it got is announced to X-Min-Position's
//! waiters: on PostgreSQL by the batch's own transaction (see
//! [`ticketflow_projections::PgReadStore`]), embedded by the worker.
//!
//! Where the batches come from depends on the mode:
//! - on PostgreSQL and NATS ([`stream::StreamProjectors`]), one
//!   durable JetStream pull consumer;
//! - embedded ([`Projector::run_on_log`]), the log itself, read from the
//!   lowest checkpoint on as it grows: the process is the only worker.
//!
//! The checkpoints decide what is new to each projection, so redelivered
//! messages change nothing. A stream batch that does not continue a
//! projection's checkpoint (the consumer was created after events were
//! published, or the stream was reset) is filled in for it from the event
//! store, the source of truth.
//!
//! Either way the worker stops when told (the process drains) between
//! batches, so the batch in flight is committed, published and acknowledged
//! whole.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use ticketflow_nats::Broker;
use ticketflow_store::{EventStore, StoreError, StoredEvent, Watch};

use crate::checkpoint::{apply_batch_together, Applied, Outcome};
use crate::{ChannelMessage, Projection, ReadStore, Remembered};

mod announce;
pub mod stream;

pub use announce::Announce;

/// Events per batch.
pub(crate) const BATCH: usize = 500;
/// Pause after a failure before trying again.
pub(crate) const BACKOFF: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub(crate) enum ProjectorError {
    #[error(transparent)]
    Bus(#[from] ticketflow_nats::BusError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("lost leadership")]
    Deposed,
}

pub struct Projector {
    /// The event log: gap fills, and the source itself when following the log.
    events: Arc<dyn EventStore>,
    /// The read models the projections write.
    reads: Arc<dyn ReadStore>,
    /// Where the rendered channel messages go.
    broker: Broker,
    projections: Vec<Arc<dyn Projection>>,
    /// Each projection's ticket states from the last batches (one batch at
    /// a time holds them).
    remembered: Mutex<Vec<Remembered>>,
}

impl Projector {
    pub fn new(
        events: Arc<dyn EventStore>,
        reads: Arc<dyn ReadStore>,
        broker: Broker,
        projections: Vec<Arc<dyn Projection>>,
    ) -> Self {
        let remembered = projections.iter().map(|_| Remembered::default()).collect();
        Self {
            events,
            reads,
            broker,
            projections,
            remembered: Mutex::new(remembered),
        }
    }

    /// Runs until `stop` is cancelled, following the log from the
    /// checkpoints and announcing each new one to `announce`.
    pub async fn run_on_log(
        self,
        mut watch: Watch,
        announce: Arc<dyn Announce>,
        stop: CancellationToken,
    ) {
        while !stop.is_cancelled() {
            if let Err(e) = self.follow(&mut watch, announce.as_ref(), &stop).await {
                tracing::warn!(error = %e, "projections interrupted");
                stop.run_until_cancelled(tokio::time::sleep(BACKOFF)).await;
            }
        }
    }

    async fn follow(
        &self,
        watch: &mut Watch,
        announce: &dyn Announce,
        stop: &CancellationToken,
    ) -> Result<(), ProjectorError> {
        let mut at = i64::MAX;
        for projection in &self.projections {
            let checkpoint = self.reads.checkpoint(projection.name()).await?;
            // What an earlier run applied counts for X-Min-Position from the start.
            announce
                .announce_checkpoint(projection.name(), checkpoint)
                .await?;
            at = at.min(checkpoint);
        }
        while !stop.is_cancelled() {
            let batch = self.events.read_all(at, BATCH as i64).await?;
            if batch.is_empty() {
                let grown = watch.head.wait_for(|head| *head > at);
                let Some(grown) = stop.run_until_cancelled(grown).await else {
                    break;
                };
                // The store is gone, and with it the process: nothing to follow.
                grown.map_err(|_| StoreError::Unavailable("the log closed".into()))?;
                continue;
            }
            let positions = self.project(&batch).await?;
            for (projection, position) in self.projections.iter().zip(&positions) {
                announce
                    .announce_checkpoint(projection.name(), *position)
                    .await?;
            }
            at = positions.into_iter().min().unwrap_or(at);
        }
        Ok(())
    }

    /// Applies a batch to every projection and publishes the channel
    /// messages it stored; returns each projection's checkpoint after it.
    pub(crate) async fn project(&self, events: &[StoredEvent]) -> Result<Vec<i64>, ProjectorError> {
        let (positions, messages) = self.apply(events).await?;
        // Sockets first: they are what someone is waiting on.
        self.publish(messages).await?;
        Ok(positions)
    }

    /// Announces the channel messages a batch stored (and committed). Best
    /// effort: a gateway that misses one notices the jump in seq and reads
    /// it back.
    async fn publish(&self, messages: Vec<ChannelMessage>) -> Result<(), ProjectorError> {
        for message in messages {
            self.broker
                .publish_channel(&message.channel, message.seq, message.json)
                .await?;
        }
        Ok(())
    }

    /// Applies a batch to every projection, first filling from the event
    /// store any gap a projection has before it. Returns each projection's
    /// checkpoint after it, and the channel messages stored on the way, each
    /// projection's in the order it stored them (a gap's before the batch's).
    async fn apply(
        &self,
        events: &[StoredEvent],
    ) -> Result<(Vec<i64>, Vec<ChannelMessage>), ProjectorError> {
        let all: Vec<usize> = (0..self.projections.len()).collect();
        let mut messages = Vec::new();
        loop {
            let mut after = Vec::with_capacity(all.len());
            for (i, outcome) in self
                .apply_batch(&all, events)
                .await?
                .into_iter()
                .enumerate()
            {
                match outcome.applied {
                    Applied::Done { position, .. } => after.push(position),
                    Applied::Gap { expected_from } => {
                        messages.extend(self.fill_gap(i, expected_from, events).await?);
                    }
                }
                messages.extend(outcome.messages);
            }
            if after.len() == all.len() {
                return Ok((after, messages));
            }
        }
    }

    /// Applies to projection `i` the events from `expected_from` up to the
    /// batch's first; returns the channel messages they stored.
    async fn fill_gap(
        &self,
        i: usize,
        expected_from: i64,
        events: &[StoredEvent],
    ) -> Result<Vec<ChannelMessage>, ProjectorError> {
        let upto = events.first().map_or(expected_from, |e| e.position);
        let missing = self
            .events
            .read_all(expected_from - 1, upto - expected_from)
            .await?;
        tracing::info!(
            projection = self.projections[i].name(),
            from = expected_from,
            count = missing.len(),
            "filling a gap from the event store"
        );
        if missing.is_empty() {
            // The events before this batch are not committed yet? Impossible
            // in position order; fail loudly rather than spin.
            return Err(StoreError::Corrupt(format!(
                "gap before position {upto} cannot be filled"
            ))
            .into());
        }
        let outcomes = self.apply_batch(&[i], &missing).await?;
        Ok(outcomes.into_iter().flat_map(|o| o.messages).collect())
    }

    /// Applies `events` to the projections `which`, in one transaction.
    async fn apply_batch(
        &self,
        which: &[usize],
        events: &[StoredEvent],
    ) -> Result<Vec<Outcome>, StoreError> {
        let mut remembered = self.remembered.lock().await;
        let mut together: Vec<(&dyn Projection, &mut Remembered)> = self
            .projections
            .iter()
            .map(|p| p.as_ref())
            .zip(remembered.iter_mut())
            .enumerate()
            .filter(|(i, _)| which.contains(i))
            .map(|(_, member)| member)
            .collect();
        apply_batch_together(self.reads.as_ref(), &mut together, events).await
    }
}
