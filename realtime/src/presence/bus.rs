//! Keeping the registry in step with the other instances: publishing what
//! this instance's users do, answering and asking sync requests, hearing the
//! others, beats and sweeps, member removals; resubscribing after failures.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ticketflow_nats::{member_removal, BusError, Message, PresenceSubject, Subscription};
use tokio::sync::mpsc;
use tokio::time::Instant;
use uuid::Uuid;

use super::wire::{Op, Wire, WireUser};
use super::{Presence, BEAT_EVERY, SWEEP_EVERY, SYNC_WINDOW};
use crate::close_codes::REMOVED_MEMBER;

/// A subject and body waiting to be published.
pub(super) type Outgoing = (String, Vec<u8>);

pub(super) struct Subscriptions {
    ops: Subscription,
    removals: Subscription,
}

/// Publishes what the registry queues, answers sync requests, applies the
/// other instances' messages, beats and sweeps; resubscribes after failures.
pub(super) async fn run(
    presence: Arc<Presence>,
    mut subscriptions: Subscriptions,
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
) {
    let mut beat = tokio::time::interval(BEAT_EVERY);
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    loop {
        tokio::select! {
            out = outgoing.recv() => {
                // The registry holds the sender: this never ends first.
                let Some((subject, body)) = out else { return };
                if let Err(e) = presence.broker.pubsub.publish(Message::new(subject, body)).await {
                    tracing::warn!(error = %e, "presence publish failed");
                }
            }
            message = subscriptions.ops.next() => match message {
                Some(message) => presence.on_message(message).await,
                None => subscriptions = presence.resubscribe().await,
            },
            message = subscriptions.removals.next() => match message {
                Some(message) => presence.on_removal(&message),
                None => subscriptions = presence.resubscribe().await,
            },
            _ = beat.tick() => presence.beat(),
            _ = sweep.tick() => presence.sweep(),
        }
    }
}

impl Presence {
    pub(super) async fn subscribe(&self) -> Result<Subscriptions, BusError> {
        let (pubsub, subjects) = (&self.broker.pubsub, &self.broker.subjects);
        let ops = pubsub.subscribe(subjects.all_presence()).await?;
        let removals = pubsub.subscribe(subjects.member_removals()).await?;
        Ok(Subscriptions { ops, removals })
    }

    async fn resubscribe(&self) -> Subscriptions {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            match self.subscribe().await {
                Ok(subscriptions) => return subscriptions,
                Err(e) => tracing::warn!(error = %e, "presence subscription lost; retrying"),
            }
        }
    }

    /// Queues a message to the other instances (drop-safe: no await).
    pub(super) fn publish(
        &self,
        project_id: Uuid,
        op: Op,
        users: Vec<WireUser>,
        ticket_id: Option<Uuid>,
    ) {
        if let Some(body) = self.wire(op, users, ticket_id).encode() {
            let subject = self.broker.subjects.presence(project_id);
            let _ = self.outbox.send((subject, body));
        }
    }

    fn wire(&self, op: Op, users: Vec<WireUser>, ticket_id: Option<Uuid>) -> Wire {
        Wire {
            instance: self.instance,
            op,
            users,
            ticket_id,
        }
    }

    /// Learns the other instances' users of a project (before a socket joins).
    pub(super) async fn sync(&self, project_id: Uuid) {
        let pubsub = &self.broker.pubsub;
        if !pubsub.shared() {
            // Alone on the broker (embedded): nobody would answer within
            // the window, and every presence socket would wait it out.
            return;
        }
        let inbox = pubsub.new_inbox();
        let Ok(mut replies) = pubsub.subscribe(inbox.clone()).await else {
            return;
        };
        let mut ask = Message::new(self.broker.subjects.presence_sync(project_id), Vec::new());
        ask.reply = Some(inbox);
        if pubsub.publish(ask).await.is_err() {
            return;
        }
        let deadline = Instant::now() + SYNC_WINDOW;
        while let Ok(Some(reply)) = tokio::time::timeout_at(deadline, replies.next()).await {
            if let Ok(wire) = Wire::decode(&reply.payload) {
                self.hear(project_id, &wire);
            }
        }
    }

    async fn on_message(&self, message: Message) {
        match self.broker.subjects.parse_presence(&message.subject) {
            Some(PresenceSubject::Sync { project_id }) => {
                if let Some(reply) = message.reply {
                    self.answer_sync(project_id, reply).await;
                }
            }
            Some(PresenceSubject::Ops { project_id }) => match Wire::decode(&message.payload) {
                Ok(wire) => self.hear(project_id, &wire),
                Err(e) => tracing::debug!(error = %e, "malformed presence message"),
            },
            None => {}
        }
    }

    /// Applies another instance's message about a project (not our own).
    fn hear(&self, project_id: Uuid, wire: &Wire) {
        if wire.instance != self.instance {
            self.registry().apply(project_id, wire, Instant::now());
        }
    }

    /// Tells an instance where a socket opens our users of the project.
    async fn answer_sync(&self, project_id: Uuid, reply: String) {
        let users = self.registry().local_users(project_id);
        if users.is_empty() {
            return;
        }
        if let Some(body) = self.wire(Op::Beat, users, None).encode() {
            let _ = self.broker.pubsub.publish(Message::new(reply, body)).await;
        }
    }

    fn on_removal(&self, message: &Message) {
        if let Some(removal) = member_removal(message) {
            self.registry()
                .close(removal.project_id, removal.user_id, REMOVED_MEMBER);
        }
    }

    /// Lists this instance's users of every project it has sockets in.
    fn beat(&self) {
        // Our own entries stay fresh while we live.
        let projects = self.registry().refresh(self.instance, Instant::now());
        for project_id in projects {
            let users = self.registry().local_users(project_id);
            self.publish(project_id, Op::Beat, users, None);
        }
    }

    /// Drops what other instances said and did not repeat in time.
    fn sweep(&self) {
        self.registry().expire(self.instance, Instant::now());
    }
}
