//! The event bus: every committed event, in global position order, on one
//! NATS JetStream stream.
//!
//! Layout (documented for analysts in the README):
//! - stream `<PREFIX>_EVENTS` (file storage), subjects `<prefix>.events.>`;
//! - one message per event on `<prefix>.events.<project_id>.<stream_id>.<EventType>`,
//!   its body the event as JSON ([`StoredEvent`]), header `Nats-Msg-Id` = event id
//!   (JetStream drops a republished duplicate) and `Ticketflow-Position`.
//!
//! The prefix (default `ticketflow`) lets several deployments, or test runs,
//! share one NATS server without seeing each other.
//!
//! Beside the stored stream, core subjects carry what is not history
//! ([`Broker`], over [`PubSub`]: NATS, or [`LocalPubSub`] in one process).

pub mod channel;
pub mod consumer;
pub mod local;
pub mod local_relay;
pub mod member_removal;
pub mod metrics;
pub mod presence;
pub mod pubsub;
pub mod relay;
pub mod revocation;

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{self, StorageType};
use async_nats::jetstream::{self, Context};
use ticketflow_store::StoredEvent;
use uuid::Uuid;

/// Pause between tries of [`Bus::stream_ready`].
const STREAM_RETRY: Duration = Duration::from_secs(1);

pub use channel::{Channel, ChannelDelivery};
pub use consumer::{Batch, EventConsumer};
pub use local::LocalPubSub;
pub use member_removal::{member_removal, MemberRemoval};
pub use presence::PresenceSubject;
pub use pubsub::{Message, NatsPubSub, PubSub, Subscription};
pub use revocation::{revocation, Revocation};

/// Long enough to cover any retry of the relay: a republish inside it is
/// dropped by JetStream even if the relay lost track of what it sent.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("NATS is unavailable: {0}")]
    Unavailable(String),
    #[error("malformed message on the bus: {0}")]
    Malformed(String),
}

fn unavailable(e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(e.to_string())
}

/// The end of the event stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tail {
    /// The stream sequence of the last message.
    pub sequence: u64,
    /// The global position of the event it carries.
    pub position: i64,
}

/// The subjects of one deployment: everything under its prefix.
#[derive(Debug, Clone)]
pub struct Subjects {
    prefix: Arc<str>,
}

impl Subjects {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The subject of one event: `<prefix>.events.<project>.<stream>.<type>`.
    pub fn event(&self, event: &StoredEvent) -> String {
        format!(
            "{}.events.{}.{}.{}",
            self.prefix, event.project_id, event.stream_id, event.event_type
        )
    }

    pub fn all_events(&self) -> String {
        format!("{}.events.>", self.prefix)
    }
}

/// Core publish/subscribe under one deployment's subjects: what the realtime
/// gateway listens to and the API and projection workers announce on.
#[derive(Clone)]
pub struct Broker {
    pub pubsub: Arc<dyn PubSub>,
    pub subjects: Subjects,
}

impl Broker {
    /// A broker inside this process, for a server that runs alone.
    pub fn local(prefix: &str) -> Self {
        Self {
            pubsub: LocalPubSub::new(),
            subjects: Subjects::new(prefix),
        }
    }

    /// Publishes a rendered channel message (not stored: the read models are
    /// the history; a gateway that misses one sees the gap in `seq` and reads
    /// it back from there).
    pub async fn publish_channel(
        &self,
        channel: &Channel,
        seq: i64,
        json: String,
    ) -> Result<(), BusError> {
        let mut message = Message::new(self.subjects.channel(channel), json);
        message.seq = Some(seq);
        self.pubsub.publish(message).await
    }

    /// Publishes a read signal to every notification socket of `user_id`,
    /// outside the channel's history.
    pub async fn publish_read_signal(&self, user_id: Uuid, json: String) -> Result<(), BusError> {
        let message = Message::new(self.subjects.read_signals(user_id), json);
        self.pubsub.publish(message).await
    }

    /// Publishes an event on its subject, as the stream's messages appear to
    /// core subscribers (the embedded mode has no stream).
    pub async fn publish_event(&self, event: &StoredEvent) -> Result<(), BusError> {
        let body = serde_json::to_vec(event).map_err(|e| BusError::Malformed(e.to_string()))?;
        let message = Message::new(self.subjects.event(event), body);
        self.pubsub.publish(message).await
    }
}

/// A connection to NATS: the JetStream stream of events under one prefix.
#[derive(Clone)]
pub struct Bus {
    client: async_nats::Client,
    js: Context,
    subjects: Subjects,
    replicas: usize,
}

impl Bus {
    /// Connects to `url`, or to any of a comma-separated list of a
    /// cluster's nodes (so starting does not depend on one node being up).
    /// The client keeps reconnecting in the background if NATS goes away.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, BusError> {
        let servers = url
            .split(',')
            .map(|one| one.trim().parse::<async_nats::ServerAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(unavailable)?;
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(servers)
            .await
            .map_err(unavailable)?;
        let bus = Self {
            js: jetstream::new(client.clone()),
            client,
            subjects: Subjects::new(prefix),
            replicas: 1,
        };
        Ok(bus)
    }

    /// How many NATS nodes keep a copy of the stream (1 by default; 3 on a
    /// three-node cluster survives the loss of any one node).
    pub fn with_stream_replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas.max(1);
        self
    }

    pub fn prefix(&self) -> &str {
        self.subjects.prefix()
    }

    /// Whether the client is connected to a NATS server right now.
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Core NATS on the same connection, under the same prefix.
    pub fn broker(&self) -> Broker {
        Broker {
            pubsub: NatsPubSub::new(self.client.clone()),
            subjects: self.subjects.clone(),
        }
    }

    pub fn stream_name(&self) -> String {
        let clean: String = self
            .prefix()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        format!("{clean}_EVENTS")
    }

    /// Creates the stream, or updates it to these settings. Idempotent.
    pub async fn ensure_stream(&self) -> Result<stream::Stream, BusError> {
        let config = stream::Config {
            name: self.stream_name(),
            subjects: vec![self.subjects.all_events()],
            storage: StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            num_replicas: self.replicas,
            ..Default::default()
        };
        self.js
            .create_or_update_stream(config)
            .await
            .map_err(unavailable)?;
        self.js
            .get_stream(self.stream_name())
            .await
            .map_err(unavailable)
    }

    /// [`Bus::ensure_stream`], tried again every [`STREAM_RETRY`] until it
    /// succeeds: NATS may come up after this process, which serves commands
    /// meanwhile.
    pub async fn stream_ready(&self) {
        while let Err(e) = self.ensure_stream().await {
            tracing::warn!(error = %e, "the JetStream stream is not reachable yet; trying again");
            tokio::time::sleep(STREAM_RETRY).await;
        }
    }

    /// Publishes `events` (consecutive, in position order) after `tail`, all
    /// in flight at once, and returns the new tail once JetStream has stored
    /// them all.
    ///
    /// Each message expects the one before it at the end of the stream
    /// (`Nats-Expected-Last-Sequence`), so if one is not stored, none after it
    /// is either: the stream never holds a later event without the earlier
    /// ones, and the caller resumes from the tail. A duplicate (`Nats-Msg-Id`,
    /// two relays overlapping) breaks the chain the same way.
    pub async fn publish_after(
        &self,
        tail: Tail,
        events: &[StoredEvent],
    ) -> Result<Tail, BusError> {
        let mut acks = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            let body = serde_json::to_vec(event).map_err(|e| BusError::Malformed(e.to_string()))?;
            let message = PublishMessage::build()
                .payload(body.into())
                .message_id(event.event_id.to_string())
                .header("Ticketflow-Position", event.position.to_string().as_str())
                .expected_last_sequence(tail.sequence + i as u64);
            let ack = self
                .js
                .send_publish(self.subjects.event(event), message)
                .await
                .map_err(unavailable)?;
            acks.push(ack);
        }
        let mut tail = tail;
        for (ack, event) in acks.into_iter().zip(events) {
            tail = Tail {
                sequence: ack.await.map_err(unavailable)?.sequence,
                position: event.position,
            };
        }
        Ok(tail)
    }

    /// Where the stream ends: its last sequence and that message's position
    /// (both 0 when it is empty).
    pub async fn tail(&self) -> Result<Tail, BusError> {
        let mut stream = self.ensure_stream().await?;
        let sequence = stream
            .info()
            .await
            .map_err(unavailable)?
            .state
            .last_sequence;
        if sequence == 0 {
            return Ok(Tail::default());
        }
        let message = stream
            .get_raw_message(sequence)
            .await
            .map_err(unavailable)?;
        Ok(Tail {
            sequence,
            position: decode(&message.payload)?.position,
        })
    }

    /// The position of the newest event in the stream, 0 when it is empty.
    pub async fn last_published_position(&self) -> Result<i64, BusError> {
        Ok(self.tail().await?.position)
    }

    /// A durable pull consumer over every event, created if missing.
    /// Acknowledging a message acknowledges every one delivered before it
    /// (`AckPolicy::All`): its one reader handles them in order, a batch at
    /// a time, and acks a batch with its last message.
    pub async fn durable_consumer(&self, name: &str) -> Result<EventConsumer, BusError> {
        let stream = self.ensure_stream().await?;
        let durable = format!("{}_{name}", self.stream_name());
        let config = pull::Config {
            durable_name: Some(durable.clone()),
            ack_policy: AckPolicy::All,
            deliver_policy: DeliverPolicy::All,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 10_000,
            ..Default::default()
        };
        let inner = stream
            .get_or_create_consumer(&durable, config)
            .await
            .map_err(unavailable)?;
        Ok(EventConsumer { inner })
    }

    /// Forgets a durable consumer: its next incarnation starts from the
    /// beginning of the stream (every message is delivered again).
    pub async fn delete_consumer(&self, name: &str) -> Result<(), BusError> {
        let stream = self.ensure_stream().await?;
        let durable = format!("{}_{name}", self.stream_name());
        stream
            .delete_consumer(&durable)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Deletes the stream (tests clean up after themselves with this).
    pub async fn delete_stream(&self) -> Result<(), BusError> {
        self.js
            .delete_stream(self.stream_name())
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// The version the NATS server at `url` says it runs (one connection, no
/// retries: for reports, not for serving).
pub async fn server_version(url: &str) -> Result<String, BusError> {
    let client = async_nats::connect(url).await.map_err(unavailable)?;
    Ok(client.server_info().version)
}

/// An event from a message body.
pub fn decode(payload: &[u8]) -> Result<StoredEvent, BusError> {
    serde_json::from_slice(payload).map_err(|e| BusError::Malformed(e.to_string()))
}
