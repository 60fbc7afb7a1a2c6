//! Revoked refresh families, kept in step across processes: a revocation is
//! stored, applied here at once, announced to the other processes on the
//! broker, and polled from the database as a backstop (a process without a
//! broker, or one that missed an announcement while NATS was away, learns
//! of it within [`POLL_EVERY`]).
//!
//! Requests only consult the memory ([`crate::TokenKeys`]): revocation costs
//! them no database round trip.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use ticketflow_nats::{revocation, Revocation, Subscription};
use ticketflow_store::StoreError;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::tokens::REMEMBER_REVOKED;
use crate::AppState;

/// How often the database is asked for revocations this process may have
/// missed.
pub const POLL_EVERY: Duration = Duration::from_secs(10);
/// How far back each poll looks before the previous one: a revocation's
/// time is taken before its transaction commits, and by another process's
/// clock.
const POLL_OVERLAP: chrono::Duration = chrono::Duration::minutes(1);

impl AppState {
    /// Applies revoked `families` here and announces them to every process.
    /// Call once they are stored.
    pub async fn announce_revocation(&self, families: Vec<Uuid>, revoked_at: DateTime<Utc>) {
        if families.is_empty() {
            return;
        }
        let revocation = Revocation {
            families,
            revoked_at: revoked_at.timestamp(),
        };
        self.tokens
            .revoke(&revocation.families, revocation.revoked_at);
        if let Some(broker) = &self.broker {
            if let Err(e) = broker.publish_revocation(&revocation).await {
                // The others' next poll finds it in the database.
                tracing::warn!(error = %e, "cannot announce a revocation; the others poll for it");
            }
        }
    }
}

/// Loads the families revoked recently enough to have live access tokens,
/// then keeps this process in step with the others until the returned task
/// is aborted. Subscribes before loading, so nothing falls in between.
pub async fn start(state: AppState) -> Result<JoinHandle<()>, StoreError> {
    let subscription = subscribe(&state).await;
    let polled = load(&state, Utc::now() - REMEMBER_REVOKED).await?;
    Ok(tokio::spawn(follow(state, subscription, polled)))
}

async fn follow(
    state: AppState,
    mut subscription: Option<Subscription>,
    mut polled: DateTime<Utc>,
) {
    let mut poll = tokio::time::interval(POLL_EVERY);
    poll.reset();
    loop {
        tokio::select! {
            message = next(&mut subscription) => match message {
                Some(message) => {
                    if let Some(r) = revocation(&message) {
                        state.tokens.revoke(&r.families, r.revoked_at);
                    }
                }
                None => {
                    tracing::warn!("revocation subscription ended; polling until it is back");
                    subscription = None;
                }
            },
            _ = poll.tick() => {
                if subscription.is_none() {
                    subscription = subscribe(&state).await;
                }
                match load(&state, polled - POLL_OVERLAP).await {
                    Ok(at) => polled = at,
                    Err(e) => tracing::warn!(error = %e, "cannot poll revoked token families"),
                }
            }
        }
    }
}

/// The next announcement; never, without a subscription.
async fn next(subscription: &mut Option<Subscription>) -> Option<ticketflow_nats::Message> {
    match subscription {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

async fn subscribe(state: &AppState) -> Option<Subscription> {
    let broker = state.broker.as_ref()?;
    match broker.pubsub.subscribe(broker.subjects.revocations()).await {
        Ok(subscription) => Some(subscription),
        Err(e) => {
            tracing::warn!(error = %e, "cannot subscribe to revocations; polling for them");
            None
        }
    }
}

/// Applies the families revoked after `since`; returns when it looked.
async fn load(state: &AppState, since: DateTime<Utc>) -> Result<DateTime<Utc>, StoreError> {
    let started = Utc::now();
    for (family, at) in state.accounts.revoked_families_since(since).await? {
        state.tokens.revoke(&[family], at.timestamp());
    }
    Ok(started)
}
