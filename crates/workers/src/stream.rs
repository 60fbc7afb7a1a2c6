//! The projection workers on PostgreSQL and NATS: every projection fed from
//! one durable JetStream pull consumer, led by one instance at a time
//! (elected like the relay; the others stand by).
//!
//! One consumer rather than one per projection: each event is delivered,
//! decoded and acknowledged once, not once per read model, which was most of
//! what the workers and NATS spent per event. The projections apply a batch
//! in one transaction, each moving its own checkpoint; the batch is
//! acknowledged once it has committed.

use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::consumer::Consumer;
use async_nats::jetstream::AckKind;
use async_nats::jetstream::Message;
use deadpool_postgres::Pool;
use futures::StreamExt;
use std::time::Duration;
use ticketflow_bus::Bus;

use crate::leader::Leadership;
use crate::projector::{nats, Projector, ProjectorError, BACKOFF, BATCH};
use crate::STANDBY_POLL;

/// The durable consumer's name (and the leadership role's).
pub const CONSUMER: &str = "projections";
/// How long one fetch waits for messages before checking leadership again.
const FETCH_WAIT: Duration = Duration::from_millis(500);

pub struct StreamProjectors {
    pub projector: Projector,
}

impl StreamProjectors {
    /// Runs until the task is dropped: standby until leader (elected on
    /// `election`), then projects what the stream delivers.
    pub async fn run(self, bus: Bus, election: Pool) {
        loop {
            let Some(leadership) = Leadership::try_acquire(&election, CONSUMER).await else {
                tokio::time::sleep(STANDBY_POLL).await;
                continue;
            };
            tracing::info!("projection workers are leading");
            if let Err(e) = self.lead(&bus, &leadership).await {
                tracing::warn!(error = %e, "projections interrupted");
                tokio::time::sleep(BACKOFF).await;
            }
        }
    }

    async fn lead(&self, bus: &Bus, leadership: &Leadership) -> Result<(), ProjectorError> {
        let consumer = bus.durable_consumer(CONSUMER).await?;
        loop {
            if !leadership.alive().await {
                return Err(ProjectorError::Deposed);
            }
            let messages = fetch(&consumer).await?;
            let Some(last) = messages.last() else {
                continue;
            };
            if let Err(e) = self.project(&messages).await {
                // Back at once rather than after the ack wait; what some
                // projections committed, their checkpoints skip.
                for message in &messages {
                    let _ = message.ack_with(AckKind::Nak(None)).await;
                }
                return Err(e);
            }
            // Only after every commit: acks the whole batch (AckPolicy::All).
            last.ack().await.map_err(nats)?;
        }
    }

    /// Applies the batch to every projection.
    async fn project(&self, messages: &[Message]) -> Result<(), ProjectorError> {
        let mut events = Vec::with_capacity(messages.len());
        for message in messages {
            match ticketflow_bus::decode(&message.payload) {
                Ok(event) => events.push(event),
                // Not ours to interpret; the gap it leaves is filled from the store.
                Err(e) => tracing::error!(error = %e, "skipping a malformed message"),
            }
        }
        self.projector.project(&events).await.map(drop)
    }
}

/// The messages waiting, up to a batch; none if nothing came within
/// [`FETCH_WAIT`].
async fn fetch(consumer: &Consumer<pull::Config>) -> Result<Vec<Message>, ProjectorError> {
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
    Ok(messages)
}
