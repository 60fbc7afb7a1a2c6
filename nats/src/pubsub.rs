//! Core publish/subscribe: the messages that are not history (rendered
//! channel messages, presence, read signals). What the realtime gateway and
//! the API need of a broker, behind [`PubSub`], so one process can use NATS
//! and another an in-process broker ([`crate::local::LocalPubSub`]) with the
//! same code above.
//!
//! Delivery is at most once, as on core NATS: a subscriber that falls behind
//! loses messages, and every consumer of channel messages already repairs a
//! gap in `seq` from the read models.

use std::sync::Arc;

use async_nats::RequestErrorKind;
use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;

use crate::{unavailable, BusError};

/// The header that carries a channel message's place in its channel.
const SEQ_HEADER: &str = "Ticketflow-Seq";

/// One message on a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub subject: String,
    /// Where a request wants its answers.
    pub reply: Option<String>,
    /// A channel message's `seq`; `None` for anything outside a channel's history.
    pub seq: Option<i64>,
    pub payload: Bytes,
}

impl Message {
    pub fn new(subject: String, payload: impl Into<Bytes>) -> Self {
        Self {
            subject,
            reply: None,
            seq: None,
            payload: payload.into(),
        }
    }
}

/// The messages matching one subscription, until it is dropped.
pub type Subscription = BoxStream<'static, Message>;

#[async_trait]
pub trait PubSub: Send + Sync + 'static {
    async fn publish(&self, message: Message) -> Result<(), BusError>;

    /// Subscribes to a subject pattern with NATS wildcards (`*` one token,
    /// `>` the rest). Messages published after this returns are seen.
    async fn subscribe(&self, pattern: String) -> Result<Subscription, BusError>;

    /// A subject of one's own to receive answers on.
    fn new_inbox(&self) -> String;

    /// Whether other processes may be on this broker. An in-process broker
    /// says no, so nobody waits out a timeout for answers that cannot come.
    fn shared(&self) -> bool {
        true
    }

    /// Whether a subscription costs only what it matches (NATS matches at
    /// the server). An in-process broker says no: each of its subscriptions
    /// sees every message and filters it, so one broad subscription is
    /// cheaper than many narrow ones.
    fn filters(&self) -> bool {
        true
    }

    /// Whether the broker is reachable now (an in-process one always is).
    fn connected(&self) -> bool {
        true
    }
}

/// Core NATS.
pub struct NatsPubSub {
    client: async_nats::Client,
}

impl NatsPubSub {
    pub fn new(client: async_nats::Client) -> Arc<Self> {
        Arc::new(Self { client })
    }
}

#[async_trait]
impl PubSub for NatsPubSub {
    async fn publish(&self, message: Message) -> Result<(), BusError> {
        let mut headers = async_nats::HeaderMap::new();
        if let Some(seq) = message.seq {
            headers.insert(SEQ_HEADER, seq.to_string().as_str());
        }
        let sent = match message.reply {
            Some(reply) => {
                self.client
                    .publish_with_reply_and_headers(
                        message.subject,
                        reply,
                        headers,
                        message.payload,
                    )
                    .await
            }
            None => {
                self.client
                    .publish_with_headers(message.subject, headers, message.payload)
                    .await
            }
        };
        sent.map_err(unavailable)
    }

    async fn subscribe(&self, pattern: String) -> Result<Subscription, BusError> {
        let subscriber = self.client.subscribe(pattern).await.map_err(unavailable)?;
        // The subscription is in place at the server before this returns,
        // for messages other connections publish too.
        self.round_trip().await?;
        Ok(subscriber.map(from_nats).boxed())
    }

    fn new_inbox(&self) -> String {
        self.client.new_inbox()
    }

    fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }
}

impl NatsPubSub {
    /// Returns once the server has handled everything this connection sent
    /// before. `flush` only empties the client's buffer into the socket; a
    /// request nobody can answer comes back ("no responders") only after the
    /// server, which handles a connection's operations in order, has handled
    /// what preceded it.
    async fn round_trip(&self) -> Result<(), BusError> {
        let nobody = self.client.new_inbox();
        match self.client.request(nobody, Bytes::new()).await {
            Err(e) if e.kind() == RequestErrorKind::NoResponders => Ok(()),
            Ok(_) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }
}

fn from_nats(message: async_nats::Message) -> Message {
    let seq = message
        .headers
        .as_ref()
        .and_then(|h| h.get(SEQ_HEADER))
        .and_then(|seq| seq.as_str().parse().ok());
    Message {
        subject: message.subject.to_string(),
        reply: message.reply.map(|r| r.to_string()),
        seq,
        payload: message.payload,
    }
}
