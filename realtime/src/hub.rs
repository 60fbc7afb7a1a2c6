//! In-process fan-out: the process's sockets of one channel share one feed
//! of its messages.
//!
//! On a broker that filters by subject (NATS), the hub holds one broker
//! subscription per channel some socket here follows, from the first
//! socket's arrival to the last one's departure ([`Hub::fed_by`]): the broker
//! sends this process only what its sockets follow. Otherwise (the embedded
//! mode's in-process broker, where every subscription sees every message)
//! one subscription to every channel feeds it ([`Hub::new`] and
//! [`Hub::dispatch`], driven by [`crate::listener`]).
//!
//! A message is serialised once (by the projection that stored it) and shared
//! by all its sockets as one reference-counted `Utf8Bytes`. Each socket has a bounded queue; a
//! socket whose queue is full is dropped from the hub and told to close with
//! 4008, so one stalled client never holds memory or delays the others.
//!
//! The hub also knows the highest seq that came through it per channel
//! ([`Hub::delivered`]), for the head check ([`crate::head_check`]), which
//! tells a channel's sockets to fill up to a stored head
//! ([`Hub::catch_up`]) when a message was stored but never published.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use futures::StreamExt;
use ticketflow_nats::{Broker, Channel, ChannelDelivery};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::AbortHandle;
use uuid::Uuid;

use crate::close_codes::{REMOVED_MEMBER, SLOW_CONSUMER};

/// A stored channel message on its way to sockets.
#[derive(Debug, Clone)]
pub struct Live {
    /// The channel seq; `None` for a signal outside the history (it is
    /// delivered as it comes and never replayed).
    pub seq: Option<i64>,
    pub json: Utf8Bytes,
}

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

/// One channel's sockets here, and its feed while it has any.
struct Sockets {
    subscribers: Vec<Subscriber>,
    feed: Option<Arc<Feed>>,
    /// The highest seq queued on them, or that they were told to catch up to.
    delivered: i64,
    /// The stored head they are told to catch up to (see [`Hub::catch_up`]).
    catch_up: watch::Sender<i64>,
}

pub struct Hub {
    next_id: AtomicU64,
    channels: Mutex<HashMap<Channel, Sockets>>,
    queue_limit: usize,
    /// Where each channel's own feed subscribes; `None` when the caller
    /// dispatches every channel's messages.
    broker: Option<Broker>,
}

/// A socket's place in the hub; leaving it (drop) unsubscribes.
pub struct Subscription {
    hub: Arc<Hub>,
    key: Channel,
    id: u64,
    feed: Option<Arc<Feed>>,
    pub rx: mpsc::Receiver<Live>,
    pub control: Arc<Control>,
    /// Changes when the socket is to fill up to this stored seq from the
    /// store: a message the hub never saw (see [`Hub::catch_up`]).
    pub catch_up: watch::Receiver<i64>,
}

impl Subscription {
    /// Returns once the channel's messages published from now on reach this
    /// subscription (its feed's broker subscription is in place, or its first
    /// try failed: then what is missed comes back as a gap in `seq`).
    pub async fn ready(&self) {
        if let Some(feed) = &self.feed {
            let mut ready = feed.ready.clone();
            // An error means the feed's task is gone: nothing to wait for.
            let _ = ready.wait_for(|ready| *ready).await;
        }
    }
}

/// A channel's broker subscription, running as a task until dropped.
struct Feed {
    /// Tells the messages of this feed from those of an earlier one of the
    /// same channel that is still winding down.
    id: u64,
    ready: watch::Receiver<bool>,
    task: AbortHandle,
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.remove(&self.key, |s| s.id == self.id);
    }
}

impl Hub {
    /// A hub whose messages come through [`Hub::dispatch`].
    pub fn new(queue_limit: usize) -> Arc<Self> {
        Self::with_broker(queue_limit, None)
    }

    /// A hub that subscribes to each channel on `broker` while a socket
    /// here follows it (a feed task each: subscribe within a Tokio runtime).
    pub fn fed_by(queue_limit: usize, broker: Broker) -> Arc<Self> {
        Self::with_broker(queue_limit, Some(broker))
    }

    fn with_broker(queue_limit: usize, broker: Option<Broker>) -> Arc<Self> {
        Arc::new(Self {
            next_id: AtomicU64::new(1),
            channels: Mutex::new(HashMap::new()),
            queue_limit: queue_limit.max(1),
            broker,
        })
    }

    fn channels(&self) -> std::sync::MutexGuard<'_, HashMap<Channel, Sockets>> {
        // A panic while holding the lock leaves the map consistent (each
        // operation is a single insert or retain): keep using it.
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn subscribe(self: &Arc<Self>, key: Channel, user_id: Uuid) -> Subscription {
        let (tx, rx) = mpsc::channel(self.queue_limit);
        let control = Arc::new(Control::default());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let subscriber = Subscriber {
            id,
            user_id,
            tx,
            control: control.clone(),
        };
        let mut channels = self.channels();
        let channel = channels.entry(key).or_insert_with(|| Sockets {
            subscribers: Vec::new(),
            feed: self.start_feed(&key, id),
            delivered: 0,
            catch_up: watch::Sender::new(0),
        });
        channel.subscribers.push(subscriber);
        let feed = channel.feed.clone();
        let catch_up = channel.catch_up.subscribe();
        drop(channels);
        Subscription {
            hub: self.clone(),
            key,
            id,
            feed,
            rx,
            control,
            catch_up,
        }
    }

    /// The feed of a channel gaining its first socket here, if the hub
    /// subscribes per channel. Its id is that socket's, unique in the hub.
    fn start_feed(self: &Arc<Self>, key: &Channel, id: u64) -> Option<Arc<Feed>> {
        let broker = self.broker.clone()?;
        let (ready_tx, ready) = watch::channel(false);
        let hub = Arc::downgrade(self);
        let task = tokio::spawn(feed(hub, broker, *key, id, ready_tx));
        Some(Arc::new(Feed {
            id,
            ready,
            task: task.abort_handle(),
        }))
    }

    fn remove(&self, key: &Channel, which: impl Fn(&Subscriber) -> bool) {
        let mut channels = self.channels();
        if let Some(channel) = channels.get_mut(key) {
            channel.subscribers.retain(|s| !which(s));
            if channel.subscribers.is_empty() {
                channels.remove(key);
            }
        }
    }

    /// Queues `live` on every socket of `key`; a full queue closes its socket.
    pub fn dispatch(&self, key: &Channel, live: Live) {
        self.dispatch_from(None, key, live);
    }

    /// [`Hub::dispatch`] for the feed `from` (`None`: the caller's), which
    /// must still be the channel's own.
    fn dispatch_from(&self, from: Option<u64>, key: &Channel, live: Live) {
        let mut channels = self.channels();
        let Some(channel) = channels.get_mut(key) else {
            return;
        };
        if from != channel.feed.as_ref().map(|f| f.id) {
            return;
        }
        channel.delivered = channel.delivered.max(live.seq.unwrap_or(0));
        let list = &mut channel.subscribers;
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

    /// Each channel with sockets here, and the highest seq they were given.
    pub fn delivered(&self) -> Vec<(Channel, i64)> {
        let channels = self.channels();
        channels.iter().map(|(k, c)| (*k, c.delivered)).collect()
    }

    /// Tells the sockets of `key` to fill up to `head` from the store: it was
    /// stored, but its message never came (its publisher died in between).
    /// Sockets that have it already skip it, like a live message.
    pub fn catch_up(&self, key: &Channel, head: i64) {
        if let Some(channel) = self.channels().get_mut(key) {
            channel.delivered = channel.delivered.max(head);
            channel.catch_up.send_if_modified(|told| {
                let newer = head > *told;
                *told = (*told).max(head);
                newer
            });
        }
    }

    /// Closes `user_id`'s sockets on the project's channels (4403).
    pub fn remove_member(&self, project_id: Uuid, user_id: Uuid) {
        let key = Channel::Tickets { project_id };
        let mut channels = self.channels();
        if let Some(channel) = channels.get_mut(&key) {
            channel.subscribers.retain(|s| {
                let removed = s.user_id == user_id;
                if removed {
                    s.control.close(REMOVED_MEMBER);
                }
                !removed
            });
        }
    }

    /// Closes every socket here with `code`, and forgets them and their
    /// feeds.
    pub fn close_all(&self, code: u16) {
        let mut channels = self.channels();
        for subscriber in channels.values().flat_map(|c| &c.subscribers) {
            subscriber.control.close(code);
        }
        channels.clear();
    }

    /// Sockets currently subscribed (for logs and tests).
    pub fn sockets(&self) -> usize {
        self.channels().values().map(|c| c.subscribers.len()).sum()
    }

    /// Whether each channel has a feed of its own (see [`Hub::fed_by`]).
    pub fn fed(&self) -> bool {
        self.broker.is_some()
    }

    /// Channels with a broker subscription of their own (for tests).
    pub fn feeds(&self) -> usize {
        self.channels()
            .values()
            .filter(|c| c.feed.is_some())
            .count()
    }
}

/// A channel's feed: its broker subscription into the hub, subscribing
/// again after a failure, until the channel's last socket leaves (the task
/// is aborted) or the hub is gone.
async fn feed(hub: Weak<Hub>, broker: Broker, key: Channel, id: u64, ready: watch::Sender<bool>) {
    let subject = broker.subjects.channel_feed(&key);
    loop {
        let subscribed = broker.pubsub.subscribe(subject.clone()).await;
        ready.send_replace(true);
        match subscribed {
            Ok(mut messages) => {
                while let Some(message) = messages.next().await {
                    let Some(hub) = hub.upgrade() else { return };
                    if let Some((key, live)) = live(broker.subjects.channel_delivery(&message)) {
                        hub.dispatch_from(Some(id), &key, live);
                    }
                }
                tracing::warn!(%subject, "channel subscription ended; subscribing again");
            }
            Err(e) => tracing::warn!(error = %e, %subject, "cannot subscribe to a channel"),
        }
        tokio::time::sleep(RESUBSCRIBE_AFTER).await;
    }
}

/// Pause before subscribing again after a failure.
const RESUBSCRIBE_AFTER: Duration = Duration::from_millis(500);

/// A channel message as its sockets take it, sharing the payload's buffer:
/// no copy per message, none per socket.
pub(crate) fn live(delivery: Option<ChannelDelivery>) -> Option<(Channel, Live)> {
    let delivery = delivery?;
    let json = Utf8Bytes::try_from(delivery.payload).ok()?;
    let seq = delivery.seq;
    Some((delivery.channel, Live { seq, json }))
}
