//! Refresh-token families revoked (a reused refresh token, a password
//! change, a logout), announced to every process on core NATS: each one
//! refuses the family's access tokens from then on and closes its sockets
//! (4401).
//!
//! Not stored on the bus: the database holds the revocations, and each
//! process loads and polls them there, so one missed here is late, not lost.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::pubsub::Message;
use crate::{Broker, BusError, Subjects};

/// Families revoked at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub families: Vec<Uuid>,
    /// When (Unix seconds): a family's access tokens all expire within their
    /// lifetime of it, and then it need not be remembered.
    pub revoked_at: i64,
}

impl Subjects {
    /// Where revocations are announced.
    pub fn revocations(&self) -> String {
        format!("{}.auth.revocations", self.prefix())
    }
}

impl Broker {
    pub async fn publish_revocation(&self, revocation: &Revocation) -> Result<(), BusError> {
        let body =
            serde_json::to_vec(revocation).map_err(|e| BusError::Malformed(e.to_string()))?;
        let message = Message::new(self.subjects.revocations(), body);
        self.pubsub.publish(message).await
    }
}

/// The revocation a message carries, `None` for anything else.
pub fn revocation(message: &Message) -> Option<Revocation> {
    serde_json::from_slice(&message.payload).ok()
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[tokio::test]
    async fn a_published_revocation_reaches_a_subscriber_whole() {
        let broker = Broker::local("tf");
        let mut subscription = broker
            .pubsub
            .subscribe(broker.subjects.revocations())
            .await
            .expect("subscribe");
        let sent = Revocation {
            families: vec![Uuid::new_v4(), Uuid::new_v4()],
            revoked_at: 1_700_000_000,
        };
        broker.publish_revocation(&sent).await.expect("publish");
        let message = subscription.next().await.expect("a message");
        assert_eq!(message.subject, "tf.auth.revocations");
        assert_eq!(revocation(&message), Some(sent));
        assert_eq!(revocation(&Message::new("x".into(), "{}")), None);
    }
}
