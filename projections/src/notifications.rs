//! The notifications read model: per-user notifications with a contiguous
//! per-user `seq`, from the domain's rules ([`ticketflow_domain::notices`]).
//!
//! The rules judge each event against the ticket as it was just before it, so
//! this projection keeps its own copy of every live ticket's state
//! (`rm_notify_tickets`) rather than reading another projection's tables,
//! which may stand at another position.
//!
//! Besides the ticket rules, two events give `general` notifications about
//! no ticket: a project's `AnnouncementPosted`, to the recipients it names,
//! and an inbox's `NoticeSent` (an operator's notice), to its user.
//!
//! A notification's id is derived from its event and user (see
//! [`notification_id`]) and seqs follow the log's fixed order, so a rebuild
//! reproduces both, and the read flags kept outside the projection stay valid.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use ticketflow_domain::event::{Event, Payload};
use ticketflow_domain::inbox::NO_PROJECT;
use ticketflow_domain::{announcement_notices, inbox_notices, notices, Notice};
use ticketflow_store::{StoreError, StoredEvent};
use uuid::Uuid;

use ticketflow_nats::Channel;

use crate::messages::{notification_message, ChannelMessage};
use crate::queries::Notification;
use crate::read_store::{NotificationRow, ReadTx, StateTable};
use crate::ticket_states::{OnDelete, TicketStates};
use crate::Projection;

/// Namespace of notification ids (UUID v5).
const NOTIFICATION_NAMESPACE: Uuid = Uuid::from_u128(0x6e6f_7469_6669_6361_7469_6f6e_7300_0001);

/// The id of the notification `event` gives `user_id`: the same on every
/// rebuild.
pub fn notification_id(event_id: Uuid, user_id: Uuid) -> Uuid {
    let mut name = [0u8; 32];
    name[..16].copy_from_slice(event_id.as_bytes());
    name[16..].copy_from_slice(user_id.as_bytes());
    Uuid::new_v5(&NOTIFICATION_NAMESPACE, &name)
}

/// Projection "notifications", owning the notifications, the per-user heads
/// and its ticket states.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotificationsProjection;

#[async_trait]
impl Projection for NotificationsProjection {
    fn name(&self) -> &'static str {
        "notifications"
    }

    /// Heads first: the order readers that join both (read-all) lock them
    /// in, so a rebuild's swap does not deadlock with them.
    fn tables(&self) -> &'static [&'static str] {
        &[
            "rm_notification_heads",
            "rm_notifications",
            "rm_notify_tickets",
        ]
    }

    fn insert_only(&self) -> &'static [&'static str] {
        &["rm_notifications"]
    }

    async fn apply(
        &self,
        tx: &mut dyn ReadTx,
        events: &[&StoredEvent],
    ) -> Result<Vec<ChannelMessage>, StoreError> {
        let table = StateTable::Notify;
        let mut states = TicketStates::load(tx, table, events, OnDelete::Drop).await?;
        let mut pending = Vec::new();
        for event in events {
            match event.stream_type.as_str() {
                "project" => {
                    pending.extend(general_notices(event, announcement_notices)?);
                    continue;
                }
                "inbox" => {
                    pending.extend(general_notices(event, inbox_notices)?);
                    continue;
                }
                _ => {}
            }
            let Some((notices, after)) = states.advance(event, notices)? else {
                continue;
            };
            // The key is the state's after the event: a creation gives it.
            pending.extend(notices.into_iter().map(|notice| Pending {
                event,
                ticket: Some((event.stream_id, after.key.clone())),
                notice,
            }));
        }
        states.save(tx, table).await?;
        insert(tx, &pending).await
    }
}

/// The `general` notices of a project event (announcements) or an inbox
/// event (operator notices): about no ticket. Only the event types that can
/// notify are decoded.
fn general_notices<'a, P: Payload>(
    event: &'a StoredEvent,
    rule: impl FnOnce(&Event<P>) -> Vec<Notice>,
) -> Result<Vec<Pending<'a>>, StoreError> {
    if !matches!(
        event.event_type.as_str(),
        "AnnouncementPosted" | "NoticeSent"
    ) {
        return Ok(Vec::new());
    }
    let decoded = event.decode::<P>()?;
    Ok(rule(&decoded)
        .into_iter()
        .map(|notice| Pending {
            event,
            ticket: None,
            notice,
        })
        .collect())
}

/// A notice of this batch, waiting for its seq.
struct Pending<'a> {
    event: &'a StoredEvent,
    /// The ticket's id and key, for notices about a ticket.
    ticket: Option<(Uuid, String)>,
    notice: Notice,
}

/// Stores the batch's notifications, each under its user's next seq, in
/// the order the batch gave them, and returns their channel messages.
///
/// The heads move first, by each user's count, and come back moved; they
/// stay locked until commit, so seqs stay contiguous even if two
/// transactions ever wrote for one user (they lock in user order, so they
/// take turns rather than deadlock).
async fn insert(
    tx: &mut dyn ReadTx,
    pending: &[Pending<'_>],
) -> Result<Vec<ChannelMessage>, StoreError> {
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let mut next = advance_heads(tx, pending).await?;
    let mut rows = Vec::with_capacity(pending.len());
    let mut messages = Vec::with_capacity(pending.len());
    for p in pending {
        let seq = next.get_mut(&p.notice.user_id).ok_or_else(|| {
            StoreError::Corrupt(format!("no head returned for user {}", p.notice.user_id))
        })?;
        let row = row(p, *seq);
        messages.push(message(&row)?);
        rows.push(row);
        *seq += 1;
    }
    tx.rows().insert_notifications(&rows).await?;
    Ok(messages)
}

/// Moves each user's head on by their notices in `pending`; returns each
/// user's first new seq.
async fn advance_heads(
    tx: &mut dyn ReadTx,
    pending: &[Pending<'_>],
) -> Result<HashMap<Uuid, i64>, StoreError> {
    let mut counts: BTreeMap<Uuid, i64> = BTreeMap::new();
    for p in pending {
        *counts.entry(p.notice.user_id).or_default() += 1;
    }
    let added: Vec<(Uuid, i64)> = counts.iter().map(|(u, n)| (*u, *n)).collect();
    let mut first = HashMap::with_capacity(added.len());
    for (user, last) in tx.rows().advance_heads(&added).await? {
        first.insert(user, last - counts.get(&user).copied().unwrap_or(0) + 1);
    }
    Ok(first)
}

/// The channel message of `row`, rendered from its values as a replay
/// renders it from the stored row ([`crate::ReadStore::notification_messages`]).
fn message(row: &NotificationRow<'_>) -> Result<ChannelMessage, StoreError> {
    let notification = Notification {
        id: row.notification_id,
        seq: row.seq,
        notification_type: row.notification_type,
        title: row.title.to_string(),
        message: row.message.to_string(),
        ticket_id: row.ticket_id,
        ticket_key: row.ticket_key.map(str::to_string),
        project_id: row.project_id,
        read: false,
        timestamp: row.occurred_at,
    };
    Ok(ChannelMessage {
        channel: Channel::Notifications {
            user_id: row.user_id,
        },
        seq: row.seq,
        json: notification_message(&notification)?,
    })
}

fn row<'a>(p: &'a Pending<'a>, seq: i64) -> NotificationRow<'a> {
    let (event, notice) = (p.event, &p.notice);
    NotificationRow {
        notification_id: notification_id(event.event_id, notice.user_id),
        user_id: notice.user_id,
        seq,
        notification_type: notice.notification_type,
        title: &notice.title,
        message: &notice.message,
        ticket_id: p.ticket.as_ref().map(|(id, _)| *id),
        ticket_key: p.ticket.as_ref().map(|(_, key)| key.as_str()),
        // Inbox events are logged under the nil project: none.
        project_id: (event.project_id != NO_PROJECT).then_some(event.project_id),
        occurred_at: event.occurred_at,
        event_id: event.event_id,
        position: event.position,
    }
}
