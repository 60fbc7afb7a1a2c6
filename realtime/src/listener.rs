//! The process's standing subscriptions: member removals from the event
//! stream, and, for a hub without feeds of its own (see [`Hub::fed_by`]),
//! every channel's messages.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ticketflow_nats::{member_removal, Broker, BusError};

use crate::hub::{live, Hub};

/// Feeds the hub until the task is dropped, resubscribing after failures.
pub async fn run(hub: Arc<Hub>, broker: Broker) {
    loop {
        if let Err(e) = listen(&hub, &broker).await {
            tracing::warn!(error = %e, "realtime subscription lost; resubscribing");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn listen(hub: &Hub, broker: &Broker) -> Result<(), BusError> {
    let subjects = &broker.subjects;
    let mut channels = if hub.fed() {
        futures::stream::pending().boxed()
    } else {
        broker.pubsub.subscribe(subjects.all_channels()).await?
    };
    let mut removals = broker.pubsub.subscribe(subjects.member_removals()).await?;
    loop {
        tokio::select! {
            message = channels.next() => {
                let Some(message) = message else { return Ok(()) };
                if let Some((key, live)) = live(subjects.channel_delivery(&message)) {
                    hub.dispatch(&key, live);
                }
            }
            message = removals.next() => {
                let Some(message) = message else { return Ok(()) };
                if let Some(removal) = member_removal(&message) {
                    hub.remove_member(removal.project_id, removal.user_id);
                }
            }
        }
    }
}
