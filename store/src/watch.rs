//! Following the log as it grows, whatever stores it: the newest committed
//! position and each projection's applied position, as `watch` channels.
//!
//! A backend feeds a [`WatchFeed`] from wherever it learns of commits
//! (PostgreSQL: LISTEN/NOTIFY and polling; SQLite: its one writer, right after
//! each commit), and hands out [`Watch`]es to the relay, the projectors and
//! the realtime layer.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;

/// The newest committed position, and each projection's applied position.
#[derive(Clone)]
pub struct Watch {
    pub head: watch::Receiver<i64>,
    pub checkpoints: watch::Receiver<BTreeMap<String, i64>>,
}

/// The sending side of [`Watch`]. Values only ever rise: a late or repeated
/// report of an older position (a poll racing a notification) is ignored, so
/// a watcher never sees the log shrink.
#[derive(Clone)]
pub struct WatchFeed {
    senders: Arc<Senders>,
}

struct Senders {
    head: watch::Sender<i64>,
    checkpoints: watch::Sender<BTreeMap<String, i64>>,
}

impl WatchFeed {
    /// A feed whose head starts at `head`, and the first watch on it.
    pub fn new(head: i64) -> (Self, Watch) {
        let (head, head_rx) = watch::channel(head);
        let (checkpoints, checkpoints_rx) = watch::channel(BTreeMap::new());
        let feed = Self {
            senders: Arc::new(Senders { head, checkpoints }),
        };
        let watch = Watch {
            head: head_rx,
            checkpoints: checkpoints_rx,
        };
        (feed, watch)
    }

    /// Another watch on this feed; its current values count as seen.
    pub fn subscribe(&self) -> Watch {
        Watch {
            head: self.senders.head.subscribe(),
            checkpoints: self.senders.checkpoints.subscribe(),
        }
    }

    /// Raises the head to `position` if it is further.
    pub fn head(&self, position: i64) {
        self.senders
            .head
            .send_if_modified(|current| raise(current, position));
    }

    /// Raises projection `name`'s checkpoint to `position` if it is further.
    pub fn checkpoint(&self, name: &str, position: i64) {
        self.senders.checkpoints.send_if_modified(|map| {
            let current = map.entry(name.to_string()).or_default();
            raise(current, position)
        });
    }

    /// True once no watch on this feed is left, so tasks feeding it can stop.
    pub fn is_unwatched(&self) -> bool {
        self.senders.head.is_closed()
    }
}

fn raise(current: &mut i64, to: i64) -> bool {
    let raised = to > *current;
    if raised {
        *current = to;
    }
    raised
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_only_rise() {
        let (feed, watch) = WatchFeed::new(5);
        feed.head(3);
        assert_eq!(*watch.head.borrow(), 5);
        feed.head(8);
        assert_eq!(*watch.head.borrow(), 8);
        feed.checkpoint("tickets", 4);
        feed.checkpoint("tickets", 2);
        assert_eq!(watch.checkpoints.borrow().get("tickets"), Some(&4));
    }

    #[test]
    fn a_later_subscriber_sees_the_current_values() {
        let (feed, first) = WatchFeed::new(0);
        feed.head(7);
        let later = feed.subscribe();
        assert_eq!(*later.head.borrow(), 7);
        drop(first);
        assert!(!feed.is_unwatched());
        drop(later);
        assert!(feed.is_unwatched());
    }
}
