//! WebSocket channel messages, rendered where they are stored.
//!
//! A channel message is rendered to JSON text once, by one function per
//! kind, from data the projections store; both the message a projection
//! worker publishes live (returned by [`crate::Projection::apply`]) and the one a
//! reconnecting socket replays ([`crate::ReadStore::ticket_messages`],
//! [`crate::ReadStore::notification_messages`]) come from there, so they are
//! the same bytes, with the same `seq`.
//!
//! - Ticket channel: the `ticket_channel` projection renders each ticket
//!   event's message as it applies the event and stores the text.
//! - Notification channel: rendered by [`notification_message`], live from
//!   the values the notifications projection stores in the row, on replay
//!   from the row, always with `"read": false` (a notification is unread when
//!   its live message goes out, and its replay must not differ).

use chrono::{DateTime, Utc};
use serde::Serialize;
use ticketflow_domain::{Actor, Priority, Status, Ticket, TicketPayload};
use ticketflow_nats::Channel;
use ticketflow_store::{StoreError, StoredEvent};
use uuid::Uuid;

use crate::queries::Notification;

/// One message of a channel: its seq there (contiguous from 1) and its
/// exact JSON text, to send as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelMessage {
    pub channel: Channel,
    pub seq: i64,
    pub json: String,
}

/// `ticket_update`: a ticket event other than a comment.
#[derive(Serialize)]
struct TicketUpdate<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    action: &'static str,
    seq: i64,
    event_id: Uuid,
    event_type: &'a str,
    actor: &'a Actor,
    timestamp: DateTime<Utc>,
    data: TicketData<'a>,
}

#[derive(Serialize)]
struct TicketData<'a> {
    ticket_id: Uuid,
    key: &'a str,
    title: &'a str,
    status: Option<&'a Status>,
    priority: Priority,
    assignee: Option<&'a Actor>,
    version: u64,
}

/// `comment_added`.
#[derive(Serialize)]
struct CommentAdded<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    seq: i64,
    event_id: Uuid,
    event_type: &'a str,
    actor: &'a Actor,
    timestamp: DateTime<Utc>,
    data: CommentData<'a>,
}

#[derive(Serialize)]
struct CommentData<'a> {
    comment_id: Uuid,
    ticket_id: Uuid,
    ticket_key: &'a str,
    body: &'a str,
    author: &'a Actor,
}

/// `notification_message`.
#[derive(Serialize)]
struct NotificationMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    seq: i64,
    data: &'a Notification,
}

/// The ticket-channel message of the ticket event `event` (whose payload is
/// `payload`), given the ticket's state after it: for a deletion that is the
/// last known state, flagged deleted, at the deletion's version. Returned
/// with its seq on the channel (the event's).
pub(crate) fn ticket_message(
    event: &StoredEvent,
    payload: &TicketPayload,
    after: &Ticket,
) -> Result<(i64, String), StoreError> {
    let seq = event.seq.ok_or_else(|| {
        StoreError::Corrupt(format!(
            "ticket event {} has no channel seq",
            event.event_id
        ))
    })?;
    let text = match payload {
        TicketPayload::CommentAdded {
            comment_id, body, ..
        } => serde_json::to_string(&CommentAdded {
            kind: "comment_added",
            seq,
            event_id: event.event_id,
            event_type: &event.event_type,
            actor: &event.actor,
            timestamp: event.occurred_at,
            data: CommentData {
                comment_id: *comment_id,
                ticket_id: event.stream_id,
                ticket_key: &after.key,
                body,
                author: &event.actor,
            },
        })?,
        _ => serde_json::to_string(&TicketUpdate {
            kind: "ticket_update",
            action: match payload {
                TicketPayload::TicketCreated { .. } => "created",
                TicketPayload::TicketDeleted {} => "deleted",
                _ => "updated",
            },
            seq,
            event_id: event.event_id,
            event_type: &event.event_type,
            actor: &event.actor,
            timestamp: event.occurred_at,
            data: TicketData {
                ticket_id: event.stream_id,
                key: &after.key,
                title: &after.title,
                status: after.status.as_ref(),
                priority: after.priority,
                assignee: after.assignee.as_ref(),
                version: after.version,
            },
        })?,
    };
    Ok((seq, text))
}

/// The notification-channel message of `notification`: the notification
/// JSON the REST list shows, with `"read": false` whatever its flag says.
pub fn notification_message(notification: &Notification) -> Result<String, StoreError> {
    let unread = Notification {
        read: false,
        ..notification.clone()
    };
    Ok(serde_json::to_string(&NotificationMessage {
        kind: "notification_message",
        seq: unread.seq,
        data: &unread,
    })?)
}
