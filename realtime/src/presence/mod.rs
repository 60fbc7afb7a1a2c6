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
//!
//! Here: `wire` (the messages between instances), `registry` (who is where),
//! `bus` (the task that keeps the registry in step with the others) and
//! `session` (one presence socket).

mod bus;
mod registry;
mod session;
mod wire;

pub(crate) use session::PresenceSession;
pub use session::{parse_presence, PresenceMessage};

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use serde_json::Value;
use ticketflow_app::AuthUser;
use ticketflow_nats::{Broker, BusError};
use tokio::sync::mpsc;
use tokio::time::Instant;
use uuid::Uuid;

use self::bus::Outgoing;
use self::registry::{Conn, Registry};
use self::wire::{Op, WireUser};
use crate::hub::Control;
use crate::metrics::PRESENCE_USERS;

/// How often an instance lists its local users of each project.
const BEAT_EVERY: Duration = Duration::from_secs(8);
/// An instance's entry not refreshed this long is gone (its server died).
const EXPIRE_AFTER: Duration = Duration::from_secs(25);
/// How often stale entries are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(2);
/// How long a joining socket collects the other instances' users.
const SYNC_WINDOW: Duration = Duration::from_millis(200);

/// The process's presence service: its registry and its place on the bus.
pub struct Presence {
    /// Tells this instance's messages from the others'.
    instance: Uuid,
    /// Where the instances talk to each other.
    broker: Broker,
    /// Messages queued per socket before it is closed with 4008.
    queue_limit: usize,
    /// Numbers the sockets, so a leaving one is found among its user's.
    next_id: AtomicU64,
    registry: Mutex<Registry>,
    /// Messages to publish, in order (drop-safe: leaving needs no await).
    outbox: mpsc::UnboundedSender<Outgoing>,
    /// `ticketflow_presence_users`: users with sockets here, per project.
    users: metrics::Gauge,
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
            registry: Mutex::new(Registry::default()),
            outbox,
            users: metrics::gauge!(PRESENCE_USERS),
        });
        let subscriptions = presence.subscribe().await?;
        let task = bus::run(presence.clone(), subscriptions, outgoing);
        Ok((presence, task))
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        // Every operation leaves the maps consistent: keep using them after a panic.
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a socket; returns its membership, its queue and the
    /// `presence_state` it starts with (taken atomically with joining, so
    /// what follows on the queue is exactly what changed after).
    fn connect(self: &Arc<Self>, project_id: Uuid, user: &AuthUser) -> Joined {
        let (tx, rx) = mpsc::channel(self.queue_limit);
        let control = Arc::new(Control::default());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Conn {
            id,
            tx,
            control: control.clone(),
        };
        let mut registry = self.registry();
        let arrived = registry.connect(project_id, user, conn, self.instance);
        let presence_state = registry.snapshot(project_id);
        drop(registry);
        if let Some(me) = arrived {
            self.users.increment(1.0);
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

    /// Tells every presence socket here to close with `code` (they leave
    /// as they close).
    pub fn close_all(&self, code: u16) {
        self.registry().close_all(code);
    }

    /// A socket is gone: the user leaves this instance with its last one.
    fn disconnect(&self, project_id: Uuid, user_id: Uuid, id: u64) {
        let left = self
            .registry()
            .disconnect(project_id, user_id, id, self.instance);
        if let Some(me) = left {
            self.users.decrement(1.0);
            self.publish(project_id, Op::Leave, vec![me], None);
        }
    }

    fn viewing(&self, project_id: Uuid, user: &AuthUser, ticket_id: Option<Uuid>) {
        let me = WireUser::of(user, ticket_id);
        self.registry()
            .view(project_id, self.instance, &me, Instant::now());
        self.publish(project_id, Op::Viewing, vec![me], None);
    }

    fn typing(&self, project_id: Uuid, user: &AuthUser, ticket_id: Uuid) {
        let me = WireUser::of(user, None);
        self.registry().typing(project_id, &me, ticket_id);
        self.publish(project_id, Op::Typing, vec![me], Some(ticket_id));
    }
}

/// What a socket gets on joining.
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
