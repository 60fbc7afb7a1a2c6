//! The process's one view of the broker: rendered channel messages published
//! by the projection workers, and member removals from the event stream.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use futures::StreamExt;
use ticketflow_bus::{Broker, BusError, Message};
use uuid::Uuid;

use crate::hub::{ChannelKey, Hub, Live};

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
    let mut channels = broker.pubsub.subscribe(subjects.all_channels()).await?;
    let mut removals = broker.pubsub.subscribe(subjects.member_removals()).await?;
    let channel_prefix = subjects.channel_prefix();
    loop {
        tokio::select! {
            message = channels.next() => {
                let Some(message) = message else { return Ok(()) };
                if let Some((key, live)) = parse_channel(&channel_prefix, &message) {
                    hub.dispatch(&key, live);
                }
            }
            message = removals.next() => {
                let Some(message) = message else { return Ok(()) };
                if let Some((project_id, user_id)) = removed_member(&message) {
                    hub.remove_member(project_id, user_id);
                }
            }
        }
    }
}

/// The project and user of a `MemberRemoved` event's message.
pub(crate) fn removed_member(message: &Message) -> Option<(Uuid, Uuid)> {
    #[derive(serde::Deserialize)]
    struct Removed {
        user_id: Uuid,
    }
    let event = ticketflow_bus::decode(&message.payload).ok()?;
    let removed: Removed = event.data.parse().ok()?;
    Some((event.project_id, removed.user_id))
}

fn parse_channel(prefix: &str, message: &Message) -> Option<(ChannelKey, Live)> {
    let rest = message.subject.as_str().strip_prefix(prefix)?;
    let (kind, id) = rest.split_once('.')?;
    let id = Uuid::parse_str(id).ok()?;
    let key = match kind {
        "tickets" => ChannelKey::Tickets(id),
        "notifications" | "notifications_read" => ChannelKey::Notifications(id),
        _ => return None,
    };
    let seq = match message.seq {
        Some(seq) => Some(seq),
        // Only a read signal travels without a place in the history.
        None if kind == "notifications_read" => None,
        None => return None,
    };
    // Shares the payload's buffer: no copy per message, none per socket.
    let json = Utf8Bytes::try_from(message.payload.clone()).ok()?;
    Some((key, Live { seq, json }))
}
