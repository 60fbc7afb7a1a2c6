//! A projection worker: applies the log to one projection's read model, each
//! batch in one transaction with the projection's checkpoint, then publishes
//! the channel messages the batch stored. How far it got is announced to
//! X-Min-Position's waiters: on PostgreSQL by the batch's own transaction
//! (see [`ticketflow_projections::PgReadStore`]), embedded by the worker.
//!
//! Where the batches come from depends on the mode:
//! - on PostgreSQL and NATS ([`crate::stream::StreamProjectors`]), one
//!   durable JetStream pull consumer feeding every projection;
//! - embedded ([`Projector::run_on_log`]), the log itself, read from the
//!   checkpoint on as it grows: the process is the only worker.
//!
//! The checkpoint decides what is new, so redelivered messages change
//! nothing. A stream batch that does not continue the checkpoint (the
//! consumer was created after events were published, or the stream was
//! reset) is filled in from the event store, the source of truth.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;

use ticketflow_bus::Broker;
use ticketflow_projections::checkpoint::{apply_batch_remembering, Applied};
use ticketflow_projections::{Channel, Projection, ReadStore, Remembered};
use ticketflow_store::{EventStore, StoreError, StoredEvent, Watch};

use crate::Announce;

/// Events per batch.
pub(crate) const BATCH: usize = 500;
/// Pause after a failure before trying again.
pub(crate) const BACKOFF: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub(crate) enum ProjectorError {
    #[error(transparent)]
    Bus(#[from] ticketflow_bus::BusError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("NATS: {0}")]
    Nats(String),
    #[error("lost leadership")]
    Deposed,
}

pub(crate) fn nats(e: impl std::fmt::Display) -> ProjectorError {
    ProjectorError::Nats(e.to_string())
}

pub struct Projector {
    /// The event log: gap fills, and the source itself when following the log.
    events: Arc<dyn EventStore>,
    /// The read models the projection writes.
    reads: Arc<dyn ReadStore>,
    /// Where the rendered channel messages go.
    broker: Broker,
    projection: Arc<dyn Projection>,
    /// The ticket states of the last batches (one batch at a time holds it).
    remembered: Mutex<Remembered>,
}

impl Projector {
    pub fn new(
        events: Arc<dyn EventStore>,
        reads: Arc<dyn ReadStore>,
        broker: Broker,
        projection: Arc<dyn Projection>,
    ) -> Self {
        Self {
            events,
            reads,
            broker,
            projection,
            remembered: Mutex::default(),
        }
    }

    /// Runs until the task is dropped, following the log from the
    /// checkpoint and announcing each new one to `announce`.
    pub async fn run_on_log(self, mut watch: Watch, announce: Arc<dyn Announce>) {
        loop {
            if let Err(e) = self.follow(&mut watch, announce.as_ref()).await {
                tracing::warn!(projection = self.projection.name(), error = %e, "projection interrupted");
                tokio::time::sleep(BACKOFF).await;
            }
        }
    }

    async fn follow(
        &self,
        watch: &mut Watch,
        announce: &dyn Announce,
    ) -> Result<(), ProjectorError> {
        let name = self.projection.name();
        let mut at = self.reads.checkpoint(name).await?;
        // What an earlier run applied counts for X-Min-Position from the start.
        announce.announce_checkpoint(name, at).await?;
        loop {
            let batch = self.events.read_all(at, BATCH as i64).await?;
            if batch.is_empty() {
                let grown = watch.head.wait_for(|head| *head > at).await;
                // The store is gone, and with it the process: nothing to follow.
                grown.map_err(|_| StoreError::Unavailable("the log closed".into()))?;
                continue;
            }
            at = self.project(&batch).await?;
            announce.announce_checkpoint(name, at).await?;
        }
    }

    /// Applies a batch and publishes the channel messages it stored; returns
    /// the checkpoint after it.
    pub(crate) async fn project(&self, events: &[StoredEvent]) -> Result<i64, ProjectorError> {
        let (before, position) = self.apply(events).await?;
        // Sockets first: they are what someone is waiting on.
        self.publish_messages(before, position).await?;
        Ok(position)
    }

    /// Announces the channel messages this batch stored. Best effort: a
    /// gateway that misses one notices the jump in seq and reads it back.
    async fn publish_messages(&self, after: i64, upto: i64) -> Result<(), ProjectorError> {
        if upto <= after {
            return Ok(());
        }
        let messages = self
            .projection
            .messages(self.reads.as_ref(), after, upto)
            .await?;
        let subjects = &self.broker.subjects;
        for message in messages {
            let subject = match message.channel {
                Channel::Tickets { project_id } => {
                    subjects.channel("tickets", &project_id.to_string())
                }
                Channel::Notifications { user_id } => {
                    subjects.channel("notifications", &user_id.to_string())
                }
            };
            self.broker
                .publish_channel(subject, Some(message.seq), message.json)
                .await?;
        }
        Ok(())
    }

    /// Applies a batch, first filling any gap before it from the event store;
    /// returns the checkpoint before and after.
    async fn apply(&self, events: &[StoredEvent]) -> Result<(i64, i64), ProjectorError> {
        let mut before = None;
        loop {
            match self.apply_batch(events).await? {
                // What a batch applied continues its checkpoint without a gap.
                Applied::Done { applied, position } => {
                    let before = before.unwrap_or(position - applied as i64);
                    return Ok((before, position));
                }
                Applied::Gap { expected_from } => {
                    before.get_or_insert(expected_from - 1);
                    self.fill_gap(expected_from, events).await?;
                }
            }
        }
    }

    /// Applies the events from `expected_from` up to the batch's first.
    async fn fill_gap(
        &self,
        expected_from: i64,
        events: &[StoredEvent],
    ) -> Result<(), ProjectorError> {
        let upto = events.first().map_or(expected_from, |e| e.position);
        let missing = self
            .events
            .read_all(expected_from - 1, upto - expected_from)
            .await?;
        tracing::info!(
            projection = self.projection.name(),
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
        self.apply_batch(&missing).await?;
        Ok(())
    }

    async fn apply_batch(&self, events: &[StoredEvent]) -> Result<Applied, StoreError> {
        let mut remembered = self.remembered.lock().await;
        let (reads, projection) = (self.reads.as_ref(), self.projection.as_ref());
        apply_batch_remembering(reads, projection, events, &mut remembered).await
    }
}
