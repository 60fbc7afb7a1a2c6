//! The head check: live delivery of a message whose publisher died.
//!
//! A projection worker stores a channel message and then publishes it; if it
//! dies in between, the message is in the store but no socket hears of it
//! until the channel's next message shows the gap. So every [`EVERY`] this
//! task reads the stored head of every channel with sockets here (one
//! statement per channel kind, whatever their number) and compares it with
//! the highest seq the hub delivered. A channel behind at two checks in a
//! row is behind by a message that had a whole interval to arrive: its
//! sockets are told to fill up from the store ([`Hub::catch_up`]), within
//! about two intervals of the commit. A message merely in flight at one
//! check is not chased.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ticketflow_nats::Channel;
use ticketflow_projections::ReadStore;
use ticketflow_store::StoreError;
use tokio::time::MissedTickBehavior;

use crate::hub::Hub;

/// How often the stored heads are read.
pub const EVERY: Duration = Duration::from_millis(500);

/// Runs until aborted.
pub(crate) async fn run(hub: Arc<Hub>, reads: Arc<dyn ReadStore>) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // Channels behind at the last check.
    let mut behind = HashMap::new();
    loop {
        tick.tick().await;
        let delivered = hub.delivered();
        if delivered.is_empty() {
            behind.clear();
            continue;
        }
        match stored_heads(&*reads, &delivered).await {
            Ok(heads) => behind = catch_up(&hub, &delivered, &heads, &behind),
            // Sockets find out themselves when the store is down.
            Err(e) => tracing::debug!(error = %e, "cannot read the channels' heads"),
        }
    }
}

/// Tells the channels behind now and at the last check to catch up; returns
/// those behind now.
fn catch_up(
    hub: &Hub,
    delivered: &[(Channel, i64)],
    heads: &HashMap<Channel, i64>,
    behind_before: &HashMap<Channel, i64>,
) -> HashMap<Channel, i64> {
    let mut behind = HashMap::new();
    for (key, delivered) in delivered {
        let head = heads.get(key).copied().unwrap_or(0);
        if head <= *delivered {
            continue;
        }
        if behind_before.get(key).is_some_and(|then| then > delivered) {
            tracing::info!(
                channel = key.name(),
                head,
                delivered,
                "catching up a channel"
            );
            hub.catch_up(key, head);
        } else {
            behind.insert(*key, head);
        }
    }
    behind
}

/// The stored head of each channel, read per kind in one statement.
async fn stored_heads(
    reads: &dyn ReadStore,
    channels: &[(Channel, i64)],
) -> Result<HashMap<Channel, i64>, StoreError> {
    let (mut projects, mut users) = (Vec::new(), Vec::new());
    for (key, _) in channels {
        match *key {
            Channel::Tickets { project_id } => projects.push(project_id),
            Channel::Notifications { user_id } => users.push(user_id),
        }
    }
    let mut heads = HashMap::with_capacity(channels.len());
    if !projects.is_empty() {
        let stored = reads.ticket_channel_heads(projects.clone()).await?;
        let keys = projects
            .into_iter()
            .map(|project_id| Channel::Tickets { project_id });
        heads.extend(keys.zip(stored));
    }
    if !users.is_empty() {
        let stored = reads.notification_heads(users.clone()).await?;
        let keys = users
            .into_iter()
            .map(|user_id| Channel::Notifications { user_id });
        heads.extend(keys.zip(stored));
    }
    Ok(heads)
}
