//! Presence: `/ws/projects/{pid}/presence/` — who is online in a project,
//! which ticket they view, who is typing. Ephemeral: nothing is stored.
//!
//! Presence is per user, shared by every gateway instance over core NATS:
//! - each process has an instance id and a [`Presence`] registry: its local
//!   sockets per (project, user), and a global view per project,
//!   user → instance → (username, viewing, last seen);
//! - on `<prefix>.presence.<project_id>` instances publish `join`, `leave`,
//!   `viewing`, `typing`, and every [`BEAT_EVERY`] a `beat` listing their
//!   local users of the project; an entry not refreshed for [`EXPIRE_AFTER`]
//!   is dropped, so a dead instance's users leave;
//! - a socket opening on an instance asks the others for their users of the
//!   project on `<prefix>.presence.sync.<project_id>` (replies collected for
//!   [`SYNC_WINDOW`]), so `presence_state` is whole even on a fresh instance
//!   (skipped on an in-process broker, where there are no others).
//!
//! A user is present while any instance has them: `user_status` `joined`
//! goes out when a user goes from absent to present, `left` on the way back,
//! to the local sockets of the other users (the joiner gets `presence_state`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::ws::{Utf8Bytes, WebSocket};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use ticketflow_app::AuthUser;
use ticketflow_nats::{Broker, BusError, Message as BusMessage, Subscription};
use tokio::sync::mpsc;
use tokio::time::Instant;
use uuid::Uuid;

use crate::hub::{Control, REMOVED_MEMBER, SLOW_CONSUMER};
use crate::listener::removed_member;
use crate::socket::{
    bad_message, closed_by_hub, finish, parse_client, ping, pong, send, send_text, text_of,
    unknown_type, End, Keepalive, Sink, Stream,
};
use crate::Gateway;

/// How often an instance lists its local users of each project.
const BEAT_EVERY: Duration = Duration::from_secs(8);
/// An instance's entry not refreshed this long is gone (its server died).
const EXPIRE_AFTER: Duration = Duration::from_secs(25);
/// How often stale entries are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(2);
/// How long a joining socket collects the other instances' users.
const SYNC_WINDOW: Duration = Duration::from_millis(200);

/// One message between instances.
#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    instance: Uuid,
    op: Op,
    /// The user concerned (join, leave, viewing, typing), or every local
    /// user of the project (beat, sync reply).
    #[serde(default)]
    users: Vec<WireUser>,
    /// The ticket being typed in (typing).
    #[serde(default)]
    ticket_id: Option<Uuid>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Op {
    Join,
    Leave,
    Viewing,
    Typing,
    Beat,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct WireUser {
    user_id: Uuid,
    username: String,
    #[serde(default)]
    viewing: Option<Uuid>,
}

/// One local socket.
struct Conn {
    id: u64,
    tx: mpsc::Sender<Utf8Bytes>,
    control: Arc<Control>,
}

/// A user with sockets on this instance, in one project.
struct LocalUser {
    username: String,
    viewing: Option<Uuid>,
    conns: Vec<Conn>,
}

/// What one instance says about a user.
#[derive(Clone)]
struct Seen {
    username: String,
    viewing: Option<Uuid>,
    at: Instant,
}

#[derive(Default)]
struct State {
    /// project → user → this instance's sockets.
    local: HashMap<Uuid, HashMap<Uuid, LocalUser>>,
    /// project → user → instance → what it says (this instance included).
    global: HashMap<Uuid, HashMap<Uuid, HashMap<Uuid, Seen>>>,
}

/// The process's presence registry.
pub struct Presence {
    instance: Uuid,
    broker: Broker,
    queue_limit: usize,
    next_id: AtomicU64,
    state: Mutex<State>,
    /// Messages to publish, in order (drop-safe: leaving needs no await).
    outbox: mpsc::UnboundedSender<(String, Vec<u8>)>,
}

impl Presence {
    /// The registry and the task that keeps it in step with the other
    /// instances (spawn it). Subscribes before returning, so nothing
    /// published after this is missed.
    pub async fn start(
        broker: Broker,
        queue_limit: usize,
    ) -> Result<(Arc<Self>, impl Future<Output = ()> + Send + 'static), BusError> {
        let (outbox, outgoing) = mpsc::unbounded_channel();
        let presence = Arc::new(Self {
            instance: Uuid::new_v4(),
            broker,
            queue_limit: queue_limit.max(1),
            next_id: AtomicU64::new(1),
            state: Mutex::new(State::default()),
            outbox,
        });
        let subscriptions = presence.subscribe().await?;
        let task = run(presence.clone(), subscriptions, outgoing);
        Ok((presence, task))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every operation leaves the maps consistent: keep using them after a panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn subscribe(&self) -> Result<Subscriptions, BusError> {
        let (pubsub, subjects) = (&self.broker.pubsub, &self.broker.subjects);
        let ops = pubsub.subscribe(subjects.all_presence()).await?;
        let removals = pubsub.subscribe(subjects.member_removals()).await?;
        Ok(Subscriptions { ops, removals })
    }

    fn publish(&self, project_id: Uuid, op: Op, users: Vec<WireUser>, ticket_id: Option<Uuid>) {
        let wire = Wire {
            instance: self.instance,
            op,
            users,
            ticket_id,
        };
        if let Ok(body) = serde_json::to_vec(&wire) {
            let _ = self
                .outbox
                .send((self.broker.subjects.presence(project_id), body));
        }
    }

    /// Learns the other instances' users of a project (before a socket joins).
    async fn sync(&self, project_id: Uuid) {
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
        let mut ask = BusMessage::new(self.broker.subjects.presence_sync(project_id), Vec::new());
        ask.reply = Some(inbox);
        if pubsub.publish(ask).await.is_err() {
            return;
        }
        let deadline = Instant::now() + SYNC_WINDOW;
        while let Ok(Some(reply)) = tokio::time::timeout_at(deadline, replies.next()).await {
            if let Ok(wire) = serde_json::from_slice::<Wire>(&reply.payload) {
                if wire.instance != self.instance {
                    self.apply(project_id, wire);
                }
            }
        }
    }

    /// Registers a socket; returns its membership, its queue and the
    /// `presence_state` it starts with (taken atomically with joining, so
    /// what follows on the queue is exactly what changed after).
    fn connect(self: &Arc<Self>, project_id: Uuid, user: &AuthUser) -> Joined {
        let (tx, rx) = mpsc::channel(self.queue_limit);
        let control = Arc::new(Control::default());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut state = self.state();
        // A user already present elsewhere keeps viewing what they view there.
        let known_viewing = state.latest(project_id, user.id).and_then(|s| s.viewing);
        let local = state
            .local
            .entry(project_id)
            .or_default()
            .entry(user.id)
            .or_insert_with(|| LocalUser {
                username: user.username.clone(),
                viewing: known_viewing,
                conns: Vec::new(),
            });
        let first_here = local.conns.is_empty();
        local.conns.push(Conn {
            id,
            tx,
            control: control.clone(),
        });
        let viewing = local.viewing;
        // Announces the user to the others if they were absent.
        state.see(
            project_id,
            user.id,
            self.instance,
            Seen {
                username: user.username.clone(),
                viewing,
                at: Instant::now(),
            },
        );
        let presence_state = state.snapshot(project_id);
        drop(state);
        if first_here {
            let me = WireUser {
                user_id: user.id,
                username: user.username.clone(),
                viewing,
            };
            self.publish(project_id, Op::Join, vec![me], None);
        }
        Joined {
            membership: Membership {
                presence: self.clone(),
                project_id,
                user_id: user.id,
                id,
            },
            rx,
            control,
            presence_state,
        }
    }

    /// A socket is gone: the user leaves this instance with its last one.
    fn disconnect(&self, project_id: Uuid, user_id: Uuid, id: u64) {
        let mut state = self.state();
        let Some(users) = state.local.get_mut(&project_id) else {
            return;
        };
        let Some(local) = users.get_mut(&user_id) else {
            return;
        };
        local.conns.retain(|c| c.id != id);
        if !local.conns.is_empty() {
            return;
        }
        let username = local.username.clone();
        users.remove(&user_id);
        if users.is_empty() {
            state.local.remove(&project_id);
        }
        state.unsee(project_id, user_id, self.instance);
        drop(state);
        let me = WireUser {
            user_id,
            username,
            viewing: None,
        };
        self.publish(project_id, Op::Leave, vec![me], None);
    }

    fn viewing(&self, project_id: Uuid, user: &AuthUser, ticket_id: Option<Uuid>) {
        let mut state = self.state();
        let seen = Seen {
            username: user.username.clone(),
            viewing: ticket_id,
            at: Instant::now(),
        };
        state.see(project_id, user.id, self.instance, seen);
        state.set_viewing(project_id, user.id, ticket_id);
        state.broadcast(
            project_id,
            Some(user.id),
            &viewing_message(user.id, &user.username, ticket_id),
        );
        drop(state);
        let me = WireUser {
            user_id: user.id,
            username: user.username.clone(),
            viewing: ticket_id,
        };
        self.publish(project_id, Op::Viewing, vec![me], None);
    }

    fn typing(&self, project_id: Uuid, user: &AuthUser, ticket_id: Uuid) {
        self.state().broadcast(
            project_id,
            Some(user.id),
            &typing_message(user.id, &user.username, ticket_id),
        );
        let me = WireUser {
            user_id: user.id,
            username: user.username.clone(),
            viewing: None,
        };
        self.publish(project_id, Op::Typing, vec![me], Some(ticket_id));
    }

    /// Applies another instance's message about a project.
    fn apply(&self, project_id: Uuid, wire: Wire) {
        let now = Instant::now();
        let mut state = self.state();
        match wire.op {
            Op::Join | Op::Viewing => {
                for u in &wire.users {
                    let seen = Seen {
                        username: u.username.clone(),
                        viewing: u.viewing,
                        at: now,
                    };
                    state.see(project_id, u.user_id, wire.instance, seen);
                    if wire.op == Op::Viewing {
                        state.set_viewing(project_id, u.user_id, u.viewing);
                        let message = viewing_message(u.user_id, &u.username, u.viewing);
                        state.broadcast(project_id, Some(u.user_id), &message);
                    }
                }
            }
            Op::Leave => {
                for u in &wire.users {
                    state.unsee(project_id, u.user_id, wire.instance);
                }
            }
            Op::Typing => {
                if let (Some(u), Some(ticket_id)) = (wire.users.first(), wire.ticket_id) {
                    let message = typing_message(u.user_id, &u.username, ticket_id);
                    state.broadcast(project_id, Some(u.user_id), &message);
                }
            }
            Op::Beat => {
                // The instance's whole list: whoever it no longer names has left it.
                let listed: Vec<Uuid> = wire.users.iter().map(|u| u.user_id).collect();
                let gone: Vec<Uuid> = state
                    .global
                    .get(&project_id)
                    .map(|users| {
                        users
                            .iter()
                            .filter(|(user, by)| {
                                by.contains_key(&wire.instance) && !listed.contains(user)
                            })
                            .map(|(user, _)| *user)
                            .collect()
                    })
                    .unwrap_or_default();
                for user in gone {
                    state.unsee(project_id, user, wire.instance);
                }
                for u in &wire.users {
                    let seen = Seen {
                        username: u.username.clone(),
                        viewing: u.viewing,
                        at: now,
                    };
                    state.see(project_id, u.user_id, wire.instance, seen);
                }
            }
        }
    }

    /// This instance's users of a project, as the other instances hear them.
    fn local_users(&self, project_id: Uuid) -> Vec<WireUser> {
        self.state()
            .local
            .get(&project_id)
            .map(|users| {
                users
                    .iter()
                    .map(|(id, u)| WireUser {
                        user_id: *id,
                        username: u.username.clone(),
                        viewing: u.viewing,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Lists this instance's users of every project it has sockets in.
    fn beat(&self) {
        let projects: Vec<Uuid> = {
            let mut state = self.state();
            let projects: Vec<Uuid> = state.local.keys().copied().collect();
            // Our own entries stay fresh while we live.
            let now = Instant::now();
            for project_id in &projects {
                if let Some(users) = state.global.get_mut(project_id) {
                    for by in users.values_mut() {
                        if let Some(seen) = by.get_mut(&self.instance) {
                            seen.at = now;
                        }
                    }
                }
            }
            projects
        };
        for project_id in projects {
            let users = self.local_users(project_id);
            self.publish(project_id, Op::Beat, users, None);
        }
    }

    /// Drops what other instances said and did not repeat in time.
    fn sweep(&self) {
        let mut state = self.state();
        let now = Instant::now();
        let mut stale = Vec::new();
        for (project_id, users) in &state.global {
            for (user_id, by) in users {
                for (instance, seen) in by {
                    if *instance != self.instance && now - seen.at > EXPIRE_AFTER {
                        stale.push((*project_id, *user_id, *instance));
                    }
                }
            }
        }
        for (project_id, user_id, instance) in stale {
            state.unsee(project_id, user_id, instance);
        }
    }

    /// Closes a removed member's presence sockets on the project (4403).
    fn remove_member(&self, project_id: Uuid, user_id: Uuid) {
        let state = self.state();
        if let Some(local) = state.local.get(&project_id).and_then(|u| u.get(&user_id)) {
            for conn in &local.conns {
                conn.control.close(REMOVED_MEMBER);
            }
        }
    }
}

impl State {
    /// The most recent word on a user in a project.
    fn latest(&self, project_id: Uuid, user_id: Uuid) -> Option<&Seen> {
        self.global
            .get(&project_id)?
            .get(&user_id)?
            .values()
            .max_by_key(|s| s.at)
    }

    fn present(&self, project_id: Uuid, user_id: Uuid) -> bool {
        self.global
            .get(&project_id)
            .and_then(|users| users.get(&user_id))
            .is_some_and(|by| !by.is_empty())
    }

    /// What a user views, wherever they view it from (viewing is per user).
    fn set_viewing(&mut self, project_id: Uuid, user_id: Uuid, viewing: Option<Uuid>) {
        if let Some(local) = self
            .local
            .get_mut(&project_id)
            .and_then(|u| u.get_mut(&user_id))
        {
            local.viewing = viewing;
        }
        if let Some(by) = self
            .global
            .get_mut(&project_id)
            .and_then(|u| u.get_mut(&user_id))
        {
            by.values_mut().for_each(|seen| seen.viewing = viewing);
        }
    }

    /// Records what an instance says; announces a user who just arrived.
    fn see(&mut self, project_id: Uuid, user_id: Uuid, instance: Uuid, seen: Seen) {
        let was_present = self.present(project_id, user_id);
        let username = seen.username.clone();
        self.global
            .entry(project_id)
            .or_default()
            .entry(user_id)
            .or_default()
            .insert(instance, seen);
        if !was_present {
            self.broadcast(
                project_id,
                Some(user_id),
                &status("joined", user_id, &username),
            );
        }
    }

    /// Forgets what an instance said; announces a user who just left.
    fn unsee(&mut self, project_id: Uuid, user_id: Uuid, instance: Uuid) {
        let Some(users) = self.global.get_mut(&project_id) else {
            return;
        };
        let Some(by) = users.get_mut(&user_id) else {
            return;
        };
        let Some(seen) = by.remove(&instance) else {
            return;
        };
        if !by.is_empty() {
            return;
        }
        users.remove(&user_id);
        if users.is_empty() {
            self.global.remove(&project_id);
        }
        self.broadcast(
            project_id,
            Some(user_id),
            &status("left", user_id, &seen.username),
        );
    }

    /// Everyone present in a project, by username.
    fn snapshot(&self, project_id: Uuid) -> Value {
        let mut users: Vec<(String, Value)> = self
            .global
            .get(&project_id)
            .map(|users| {
                users
                    .iter()
                    .filter_map(|(user_id, by)| {
                        // The most recent word on the user wins.
                        let seen = by.values().max_by_key(|s| s.at)?;
                        Some((
                            seen.username.clone(),
                            json!({
                                "user_id": user_id,
                                "username": seen.username,
                                "viewing_ticket_id": seen.viewing,
                            }),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        users.sort_by(|a, b| a.0.cmp(&b.0));
        let users: Vec<Value> = users.into_iter().map(|(_, u)| u).collect();
        json!({ "type": "presence_state", "users": users })
    }

    /// Queues a message on the project's local sockets, except `except`'s.
    /// A full queue closes its socket (4008); it unregisters itself.
    fn broadcast(&self, project_id: Uuid, except: Option<Uuid>, message: &Value) {
        let Some(users) = self.local.get(&project_id) else {
            return;
        };
        let json = Utf8Bytes::from(message.to_string());
        for (user_id, local) in users {
            if Some(*user_id) == except {
                continue;
            }
            for conn in &local.conns {
                if let Err(mpsc::error::TrySendError::Full(_)) = conn.tx.try_send(json.clone()) {
                    conn.control.close(SLOW_CONSUMER);
                }
            }
        }
    }
}

fn status(action: &str, user_id: Uuid, username: &str) -> Value {
    json!({ "type": "user_status", "action": action, "user_id": user_id, "username": username })
}

fn viewing_message(user_id: Uuid, username: &str, ticket_id: Option<Uuid>) -> Value {
    json!({ "type": "ticket_viewing", "user_id": user_id, "username": username, "ticket_id": ticket_id })
}

fn typing_message(user_id: Uuid, username: &str, ticket_id: Uuid) -> Value {
    json!({ "type": "user_typing", "user_id": user_id, "username": username, "ticket_id": ticket_id })
}

struct Joined {
    membership: Membership,
    rx: mpsc::Receiver<Utf8Bytes>,
    control: Arc<Control>,
    presence_state: Value,
}

/// A socket's place in the registry; dropping it leaves.
struct Membership {
    presence: Arc<Presence>,
    project_id: Uuid,
    user_id: Uuid,
    id: u64,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.presence
            .disconnect(self.project_id, self.user_id, self.id);
    }
}

struct Subscriptions {
    ops: Subscription,
    removals: Subscription,
}

/// Publishes what the registry queues, answers sync requests, applies the
/// other instances' messages, beats and sweeps; resubscribes after failures.
async fn run(
    presence: Arc<Presence>,
    mut subscriptions: Subscriptions,
    mut outgoing: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
) {
    let mut beat = tokio::time::interval(BEAT_EVERY);
    let mut sweep = tokio::time::interval(SWEEP_EVERY);
    let ops_prefix = presence.broker.subjects.presence_prefix();
    loop {
        tokio::select! {
            out = outgoing.recv() => {
                // The registry holds the sender: this never ends first.
                let Some((subject, body)) = out else { return };
                if let Err(e) = presence.broker.pubsub.publish(BusMessage::new(subject, body)).await {
                    tracing::warn!(error = %e, "presence publish failed");
                }
            }
            message = subscriptions.ops.next() => {
                match message {
                    Some(message) => on_message(&presence, &ops_prefix, message).await,
                    None => subscriptions = resubscribe(&presence).await,
                }
            }
            message = subscriptions.removals.next() => {
                match message {
                    Some(message) => {
                        if let Some((project_id, user_id)) = removed_member(&message) {
                            presence.remove_member(project_id, user_id);
                        }
                    }
                    None => subscriptions = resubscribe(&presence).await,
                }
            }
            _ = beat.tick() => presence.beat(),
            _ = sweep.tick() => presence.sweep(),
        }
    }
}

async fn resubscribe(presence: &Presence) -> Subscriptions {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        match presence.subscribe().await {
            Ok(subscriptions) => return subscriptions,
            Err(e) => tracing::warn!(error = %e, "presence subscription lost; retrying"),
        }
    }
}

async fn on_message(presence: &Presence, prefix: &str, message: BusMessage) {
    let Some(rest) = message.subject.as_str().strip_prefix(prefix) else {
        return;
    };
    if let Some(project) = rest.strip_prefix("sync.") {
        let (Ok(project_id), Some(reply)) = (Uuid::parse_str(project), message.reply) else {
            return;
        };
        let users = presence.local_users(project_id);
        if users.is_empty() {
            return;
        }
        let wire = Wire {
            instance: presence.instance,
            op: Op::Beat,
            users,
            ticket_id: None,
        };
        if let Ok(body) = serde_json::to_vec(&wire) {
            let _ = presence
                .broker
                .pubsub
                .publish(BusMessage::new(reply, body))
                .await;
        }
        return;
    }
    let Ok(project_id) = Uuid::parse_str(rest) else {
        return;
    };
    match serde_json::from_slice::<Wire>(&message.payload) {
        Ok(wire) if wire.instance != presence.instance => presence.apply(project_id, wire),
        Ok(_) => {}
        Err(e) => tracing::debug!(error = %e, "malformed presence message"),
    }
}

/// One presence socket.
pub(crate) struct PresenceSession {
    pub gateway: Gateway,
    pub user: AuthUser,
    pub project_id: Uuid,
}

impl PresenceSession {
    pub async fn run(self, socket: WebSocket) {
        let (mut sink, mut stream) = socket.split();
        let outcome = self.serve(&mut sink, &mut stream).await;
        finish(&mut sink, &mut stream, outcome).await;
    }

    async fn serve(&self, sink: &mut Sink, stream: &mut Stream) -> Result<(), End> {
        let presence = &self.gateway.presence;
        send(
            sink,
            &json!({
                "type": "connection_established", "channel": "presence",
                "user_id": self.user.id, "project_id": self.project_id,
            }),
        )
        .await?;
        presence.sync(self.project_id).await;
        let Joined {
            membership: _membership,
            mut rx,
            control,
            presence_state,
        } = presence.connect(self.project_id, &self.user);
        send(sink, &presence_state).await?;
        let mut keepalive = Keepalive::new(&self.gateway.timing, self.user.expires_at);
        loop {
            tokio::select! {
                // In this order: what was queued before a client frame is sent before its answer.
                biased;
                _ = control.notify.notified() => return Err(closed_by_hub(&control)),
                message = rx.recv() => {
                    let Some(message) = message else { return Err(closed_by_hub(&control)) };
                    send_text(sink, message).await?;
                }
                frame = stream.next() => {
                    keepalive.heard();
                    if let Some(text) = text_of(frame)? {
                        if let Some(reply) = self.on_text(text.as_str()).await? {
                            send(sink, &reply).await?;
                        }
                    }
                }
                due = keepalive.due() => {
                    due?;
                    ping(sink).await?;
                }
            }
        }
    }

    /// Handles a client message; returns the answer to the sender, if any.
    async fn on_text(&self, text: &str) -> Result<Option<Value>, End> {
        let (kind, message) = match parse_client(text) {
            Ok(parsed) => parsed,
            Err(bad) => return Ok(Some(bad)),
        };
        let presence = &self.gateway.presence;
        match kind.as_str() {
            "ping" => Ok(Some(pong(&message))),
            "viewing" => {
                let ticket_id = match &message["ticket_id"] {
                    Value::Null => None,
                    raw => match self.ticket_of_project(raw).await? {
                        Ok(id) => Some(id),
                        Err(bad) => return Ok(Some(bad)),
                    },
                };
                presence.viewing(self.project_id, &self.user, ticket_id);
                Ok(None)
            }
            "typing" => match self.ticket_of_project(&message["ticket_id"]).await? {
                Ok(id) => {
                    presence.typing(self.project_id, &self.user, id);
                    Ok(None)
                }
                Err(bad) => Ok(Some(bad)),
            },
            other => Ok(Some(unknown_type(other))),
        }
    }

    /// A `ticket_id` naming a live ticket of this project, or `bad_message`.
    async fn ticket_of_project(&self, raw: &Value) -> Result<Result<Uuid, Value>, End> {
        let Some(id) = raw.as_str().and_then(|s| Uuid::parse_str(s).ok()) else {
            return Ok(Err(bad_message("ticket_id must be a ticket id")));
        };
        let ticket = self
            .gateway
            .app
            .reads
            .ticket(id)
            .await
            .map_err(|_| End::store_unavailable())?;
        match ticket {
            Some(t) if t.project_id == self.project_id => Ok(Ok(id)),
            _ => Ok(Err(bad_message(
                "ticket_id is not a ticket of this project",
            ))),
        }
    }
}
