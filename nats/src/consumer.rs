//! The event stream's durable pull consumer, as its one reader sees it:
//! batches of decoded events, acknowledged together once handled.

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, Consumer};
use async_nats::jetstream::{AckKind, Message};
use futures::StreamExt;
use ticketflow_store::StoredEvent;

use crate::{decode, unavailable, BusError};

/// A durable consumer over every event (see [`crate::Bus::durable_consumer`]).
pub struct EventConsumer {
    pub(crate) inner: Consumer<pull::Config>,
}

/// Where a consumer stands in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerState {
    /// Messages not yet delivered.
    pub pending: u64,
    /// Messages delivered and not yet acknowledged.
    pub ack_pending: usize,
    /// The stream sequence of the last message delivered.
    pub delivered: u64,
}

/// Messages fetched together, and the events they carry.
pub struct Batch {
    messages: Vec<Message>,
    /// The events, in stream order; a malformed message is left out (its
    /// gap is the reader's to fill from the log).
    pub events: Vec<StoredEvent>,
}

impl EventConsumer {
    /// The messages waiting, up to `max`; none if nothing came within `wait`.
    pub async fn fetch(&self, max: usize, wait: Duration) -> Result<Batch, BusError> {
        let mut fetched = self
            .inner
            .fetch()
            .max_messages(max)
            .expires(wait)
            .messages()
            .await
            .map_err(unavailable)?;
        let mut messages = Vec::new();
        while let Some(message) = fetched.next().await {
            messages.push(message.map_err(unavailable)?);
        }
        let events = messages
            .iter()
            .filter_map(|message| match decode(&message.payload) {
                Ok(event) => Some(event),
                Err(e) => {
                    tracing::error!(error = %e, "skipping a malformed message");
                    None
                }
            })
            .collect();
        Ok(Batch { messages, events })
    }

    pub async fn state(&mut self) -> Result<ConsumerState, BusError> {
        let info = self.inner.info().await.map_err(unavailable)?;
        Ok(ConsumerState {
            pending: info.num_pending,
            ack_pending: info.num_ack_pending,
            delivered: info.delivered.stream_sequence,
        })
    }
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Acknowledges the whole batch (the consumer acks all up to its last).
    pub async fn ack(&self) -> Result<(), BusError> {
        match self.messages.last() {
            Some(last) => last.ack().await.map_err(unavailable),
            None => Ok(()),
        }
    }

    /// Hands the batch back for redelivery at once, rather than after the
    /// ack wait. Best effort: what is not handed back comes again anyway.
    pub async fn nak(&self) {
        for message in &self.messages {
            let _ = message.ack_with(AckKind::Nak(None)).await;
        }
    }
}
