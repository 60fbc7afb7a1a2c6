//! In-process fan-out: one NATS subscription per process feeds every socket
//! of that process.
//!
//! A message is serialised once (by the projection that stored it) and shared
//! by all its sockets as one reference-counted `Utf8Bytes`. Each socket has a bounded queue; a
//! socket whose queue is full is dropped from the hub and told to close with
//! 4008, so one stalled client never holds memory or delays the others.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{mpsc, Notify};
use uuid::Uuid;

/// A channel a socket can follow.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChannelKey {
    Tickets(Uuid),
    Notifications(Uuid),
}

/// A stored channel message on its way to sockets.
#[derive(Debug, Clone)]
pub struct Live {
    /// The channel seq; `None` for a signal outside the history (it is
    /// delivered as it comes and never replayed).
    pub seq: Option<i64>,
    pub json: Utf8Bytes,
}

pub const SLOW_CONSUMER: u16 = 4008;
pub const REMOVED_MEMBER: u16 = 4403;

/// Tells a socket to close, and with which code.
#[derive(Default)]
pub struct Control {
    pub notify: Notify,
    pub code: AtomicU16,
}

impl Control {
    pub(crate) fn close(&self, code: u16) {
        self.code.store(code, Ordering::SeqCst);
        self.notify.notify_one();
    }
}

struct Subscriber {
    id: u64,
    user_id: Uuid,
    tx: mpsc::Sender<Live>,
    control: Arc<Control>,
}

pub struct Hub {
    next_id: AtomicU64,
    channels: Mutex<HashMap<ChannelKey, Vec<Subscriber>>>,
    queue_limit: usize,
}

/// A socket's place in the hub; leaving it (drop) unsubscribes.
pub struct Subscription {
    hub: Arc<Hub>,
    key: ChannelKey,
    id: u64,
    pub rx: mpsc::Receiver<Live>,
    pub control: Arc<Control>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.remove(&self.key, |s| s.id == self.id);
    }
}

impl Hub {
    pub fn new(queue_limit: usize) -> Arc<Self> {
        Arc::new(Self {
            next_id: AtomicU64::new(1),
            channels: Mutex::new(HashMap::new()),
            queue_limit: queue_limit.max(1),
        })
    }

    fn channels(&self) -> std::sync::MutexGuard<'_, HashMap<ChannelKey, Vec<Subscriber>>> {
        // A panic while holding the lock leaves the map consistent (each
        // operation is a single insert or retain): keep using it.
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn subscribe(self: &Arc<Self>, key: ChannelKey, user_id: Uuid) -> Subscription {
        let (tx, rx) = mpsc::channel(self.queue_limit);
        let control = Arc::new(Control::default());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let subscriber = Subscriber {
            id,
            user_id,
            tx,
            control: control.clone(),
        };
        self.channels()
            .entry(key.clone())
            .or_default()
            .push(subscriber);
        Subscription {
            hub: self.clone(),
            key,
            id,
            rx,
            control,
        }
    }

    fn remove(&self, key: &ChannelKey, which: impl Fn(&Subscriber) -> bool) {
        let mut channels = self.channels();
        if let Some(list) = channels.get_mut(key) {
            list.retain(|s| !which(s));
            if list.is_empty() {
                channels.remove(key);
            }
        }
    }

    /// Queues `live` on every socket of `key`; a full queue closes its socket.
    pub fn dispatch(&self, key: &ChannelKey, live: Live) {
        let mut channels = self.channels();
        let Some(list) = channels.get_mut(key) else {
            return;
        };
        list.retain(|s| match s.tx.try_send(live.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                s.control.close(SLOW_CONSUMER);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        if list.is_empty() {
            channels.remove(key);
        }
    }

    /// Closes `user_id`'s sockets on the project's channels (4403).
    pub fn remove_member(&self, project_id: Uuid, user_id: Uuid) {
        let key = ChannelKey::Tickets(project_id);
        let mut channels = self.channels();
        if let Some(list) = channels.get_mut(&key) {
            list.retain(|s| {
                let removed = s.user_id == user_id;
                if removed {
                    s.control.close(REMOVED_MEMBER);
                }
                !removed
            });
        }
    }

    /// Sockets currently subscribed (for logs and tests).
    pub fn sockets(&self) -> usize {
        self.channels().values().map(Vec::len).sum()
    }
}
