//! An in-process broker for a server that runs alone (the embedded mode):
//! the same subjects and wildcards as core NATS, over one broadcast channel.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::broadcast;

use crate::pubsub::{Message, PubSub, Subscription};
use crate::BusError;

/// Messages a subscriber may fall behind by before it loses some (as a slow
/// core NATS subscriber would). Generous: every subscriber sees every message
/// and filters it, and the gateway's listener takes a burst of thousands.
const CAPACITY: usize = 65_536;

pub struct LocalPubSub {
    sender: broadcast::Sender<Arc<Message>>,
    inboxes: AtomicU64,
}

impl LocalPubSub {
    pub fn new() -> Arc<Self> {
        let (sender, _) = broadcast::channel(CAPACITY);
        Arc::new(Self {
            sender,
            inboxes: AtomicU64::new(0),
        })
    }
}

#[async_trait]
impl PubSub for LocalPubSub {
    async fn publish(&self, message: Message) -> Result<(), BusError> {
        // No subscriber is no error: nobody is listening, as on NATS.
        let _ = self.sender.send(Arc::new(message));
        Ok(())
    }

    async fn subscribe(&self, pattern: String) -> Result<Subscription, BusError> {
        let receiver = self.sender.subscribe();
        let messages = futures::stream::unfold(receiver, |mut receiver| async move {
            loop {
                match receiver.recv().await {
                    Ok(message) => return Some((message, receiver)),
                    Err(broadcast::error::RecvError::Lagged(lost)) => {
                        tracing::warn!(lost, "a local subscriber fell behind and lost messages");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        let matching = messages.filter_map(move |message| {
            let wanted = matches(&pattern, &message.subject);
            async move { wanted.then(|| Message::clone(&message)) }
        });
        Ok(matching.boxed())
    }

    fn new_inbox(&self) -> String {
        let n = self.inboxes.fetch_add(1, Ordering::Relaxed);
        format!("_INBOX.local.{n}")
    }

    fn shared(&self) -> bool {
        false
    }

    fn filters(&self) -> bool {
        false
    }
}

/// Whether `subject` matches `pattern` under NATS rules: tokens split on
/// `.`, `*` matches exactly one token, a final `>` one or more.
fn matches(pattern: &str, subject: &str) -> bool {
    let mut subject = subject.split('.');
    for token in pattern.split('.') {
        match (token, subject.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (literal, Some(s)) if literal == s => {}
            _ => return false,
        }
    }
    subject.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_nats() {
        assert!(matches("a.b.c", "a.b.c"));
        assert!(!matches("a.b.c", "a.b"));
        assert!(!matches("a.b", "a.b.c"));
        assert!(matches("a.*.c", "a.x.c"));
        assert!(!matches("a.*.c", "a.x.y.c"));
        assert!(matches("a.>", "a.b"));
        assert!(matches("a.>", "a.b.c.d"));
        assert!(!matches("a.>", "a"));
        assert!(matches(
            "p.events.*.*.MemberRemoved",
            "p.events.1.2.MemberRemoved"
        ));
        assert!(!matches(
            "p.events.*.*.MemberRemoved",
            "p.events.1.2.TicketCreated"
        ));
    }

    #[tokio::test]
    async fn subscribers_get_what_matches_in_order() {
        let broker = LocalPubSub::new();
        let mut tickets = broker
            .subscribe("t.channel.>".into())
            .await
            .expect("subscribe");
        let mut all = broker.subscribe(">".into()).await.expect("subscribe");
        for (i, subject) in ["t.channel.a", "t.presence.b", "t.channel.c"]
            .iter()
            .enumerate()
        {
            let mut message = Message::new(subject.to_string(), format!("{i}"));
            message.seq = Some(i as i64);
            broker.publish(message).await.expect("publish");
        }
        let first = tickets.next().await.expect("first");
        let second = tickets.next().await.expect("second");
        assert_eq!(
            (first.subject.as_str(), first.seq),
            ("t.channel.a", Some(0))
        );
        assert_eq!(
            (second.subject.as_str(), second.seq),
            ("t.channel.c", Some(2))
        );
        let everything: Vec<_> = all.by_ref().take(3).map(|m| m.payload).collect().await;
        assert_eq!(everything, vec!["0", "1", "2"]);
    }

    #[tokio::test]
    async fn inboxes_are_unique() {
        let broker = LocalPubSub::new();
        assert_ne!(broker.new_inbox(), broker.new_inbox());
    }
}
