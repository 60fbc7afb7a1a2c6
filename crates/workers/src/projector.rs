//! A projection worker: one durable JetStream pull consumer per projection,
//! explicit acks after the read model's transaction commits.
//!
//! The checkpoint (stored with the rows) decides what is new, so redelivered
//! messages change nothing. A batch that does not continue the checkpoint
//! (the consumer was created after events were published, or the stream was
//! reset) is filled in from the event store, the source of truth.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::consumer::Consumer;
use futures::StreamExt;
use ticketflow_bus::{Broker, Bus};
use ticketflow_projections::checkpoint::{apply_batch, Applied};
use ticketflow_projections::{Channel, Projection, ReadStore};
use ticketflow_store::pg::PgStore;
use ticketflow_store::{EventStore, StoreError, StoredEvent};

use crate::leader::Leadership;
use crate::STANDBY_POLL;

const BATCH: usize = 500;
/// How long one fetch waits for messages before checking leadership again.
const FETCH_WAIT: Duration = Duration::from_millis(500);
const BACKOFF: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
enum ProjectorError {
    #[error(transparent)]
    Bus(#[from] ticketflow_bus::BusError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("NATS: {0}")]
    Nats(String),
    #[error("lost leadership")]
    Deposed,
}

fn nats(e: impl std::fmt::Display) -> ProjectorError {
    ProjectorError::Nats(e.to_string())
}

pub struct Projector {
    /// The event log (gap fills), leadership and checkpoint announcements.
    pub store: PgStore,
    /// The read models the projection writes.
    pub reads: Arc<dyn ReadStore>,
    pub bus: Bus,
    /// Where the rendered channel messages go.
    pub broker: Broker,
    pub projection: Arc<dyn Projection>,
}

impl Projector {
    /// Runs until the task is dropped: standby until leader, then projects.
    pub async fn run(self) {
        let role = format!("projection:{}", self.projection.name());
        loop {
            let Some(leadership) = Leadership::try_acquire(self.store.pool(), &role).await else {
                tokio::time::sleep(STANDBY_POLL).await;
                continue;
            };
            tracing::info!(
                projection = self.projection.name(),
                "projection worker is leading"
            );
            if let Err(e) = self.lead(&leadership).await {
                tracing::warn!(projection = self.projection.name(), error = %e, "projection interrupted");
                tokio::time::sleep(BACKOFF).await;
            }
        }
    }

    async fn lead(&self, leadership: &Leadership) -> Result<(), ProjectorError> {
        let consumer = self.bus.durable_consumer(self.projection.name()).await?;
        loop {
            if !leadership.alive().await {
                return Err(ProjectorError::Deposed);
            }
            self.project_batch(&consumer).await?;
        }
    }

    async fn project_batch(&self, consumer: &Consumer<pull::Config>) -> Result<(), ProjectorError> {
        let mut batch = consumer
            .fetch()
            .max_messages(BATCH)
            .expires(FETCH_WAIT)
            .messages()
            .await
            .map_err(nats)?;
        let mut messages = Vec::new();
        while let Some(message) = batch.next().await {
            messages.push(message.map_err(nats)?);
        }
        if messages.is_empty() {
            return Ok(());
        }
        let mut events = Vec::with_capacity(messages.len());
        for message in &messages {
            match ticketflow_bus::decode(&message.payload) {
                Ok(event) => events.push(event),
                // Not ours to interpret; the gap it leaves is filled from the store.
                Err(e) => tracing::error!(error = %e, "skipping a malformed message"),
            }
        }
        let before = self.reads.checkpoint(self.projection.name()).await?;
        let position = self.apply(&events).await?;
        // Sockets first: they are what someone is waiting on.
        self.publish_messages(before, position).await?;
        // Only after the commit: an unacked message comes back, and is skipped.
        for message in &messages {
            message.ack().await.map_err(nats)?;
        }
        Ok(self
            .store
            .announce_checkpoint(self.projection.name(), position)
            .await?)
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

    /// Applies a batch, first filling any gap before it from the event store.
    async fn apply(&self, events: &[StoredEvent]) -> Result<i64, ProjectorError> {
        let reads = self.reads.as_ref();
        loop {
            match apply_batch(reads, self.projection.as_ref(), events).await? {
                Applied::Done { position, .. } => return Ok(position),
                Applied::Gap { expected_from } => {
                    let upto = events.first().map_or(expected_from, |e| e.position);
                    let missing = self
                        .store
                        .read_all(expected_from - 1, upto - expected_from)
                        .await?;
                    tracing::info!(
                        projection = self.projection.name(),
                        from = expected_from,
                        count = missing.len(),
                        "filling a gap from the event store"
                    );
                    if missing.is_empty() {
                        // The events before this batch are not committed yet?
                        // Impossible in position order; fail loudly rather than spin.
                        return Err(StoreError::Corrupt(format!(
                            "gap before position {upto} cannot be filled"
                        ))
                        .into());
                    }
                    apply_batch(reads, self.projection.as_ref(), &missing).await?;
                }
            }
        }
    }
}
