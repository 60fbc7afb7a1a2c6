//! The notifications read model: per-user notifications with a contiguous
//! per-user `seq`, from the domain's rules ([`ticketflow_domain::notices`]).
//!
//! The rules judge each event against the ticket as it was just before it, so
//! this projection keeps its own copy of every live ticket's state
//! (`rm_notify_tickets`) rather than reading another projection's tables,
//! which may stand at another position.
//!
//! A notification's id is derived from its event and user (see
//! [`notification_id`]) and seqs follow the log's fixed order, so a rebuild
//! reproduces both, and the read flags kept outside the projection stay valid.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ticketflow_domain::{notices, Notice};
use ticketflow_store::{StoreError, StoredEvent};
use tokio_postgres::{Client, Transaction};
use uuid::Uuid;

use crate::messages::ChannelMessage;
use crate::ticket_states::{OnDelete, TicketStates};
use crate::{unnest_rows, Projection, Tables};

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
        tx: &Transaction<'_>,
        tables: &Tables,
        events: &[&StoredEvent],
    ) -> Result<(), StoreError> {
        let table = tables.name("rm_notify_tickets");
        let mut states = TicketStates::load(tx, &table, events, OnDelete::Drop).await?;
        let mut pending = Vec::new();
        for event in events {
            let Some((notices, after)) = states.advance(event, notices)? else {
                continue;
            };
            // The key is the state's after the event: a creation gives it.
            pending.extend(notices.into_iter().map(|notice| Pending {
                event,
                ticket_key: after.key.clone(),
                notice,
            }));
        }
        states.save(tx, &table).await?;
        insert(tx, tables, &pending).await
    }

    /// Each notification's `notification_message`, unread (see
    /// [`crate::messages::notification_message`]).
    async fn messages(
        &self,
        client: &Client,
        after: i64,
        upto: i64,
    ) -> Result<Vec<ChannelMessage>, StoreError> {
        crate::queries::notification_messages_between(client, after, upto).await
    }
}

/// A notice of this batch, waiting for its seq.
struct Pending<'a> {
    event: &'a StoredEvent,
    ticket_key: String,
    notice: Notice,
}

/// Stores the batch's notifications, each under its user's next seq, in
/// the order the batch gave them.
///
/// The heads move first, by each user's count, in one statement that
/// returns the new heads; the rows it touches stay locked until commit, so
/// seqs stay contiguous even if two transactions ever wrote for one user
/// (they lock in user order, so they take turns rather than deadlock).
async fn insert(
    tx: &Transaction<'_>,
    tables: &Tables,
    pending: &[Pending<'_>],
) -> Result<(), StoreError> {
    if pending.is_empty() {
        return Ok(());
    }
    let mut next = advance_heads(tx, tables, pending).await?;
    let mut rows = Rows::default();
    for p in pending {
        let seq = next.get_mut(&p.notice.user_id).ok_or_else(|| {
            StoreError::Corrupt(format!("no head returned for user {}", p.notice.user_id))
        })?;
        rows.push(p, *seq);
        *seq += 1;
    }
    let sql = format!(
        "INSERT INTO {} (notification_id, user_id, seq, notification_type, title, message,
            ticket_id, ticket_key, project_id, occurred_at, event_id, position) {}",
        tables.name("rm_notifications"),
        unnest_rows(&[
            "uuid",
            "uuid",
            "bigint",
            "text",
            "text",
            "text",
            "uuid",
            "text",
            "uuid",
            "timestamptz",
            "uuid",
            "bigint"
        ])
    );
    tx.execute(
        &sql,
        &[
            &rows.ids,
            &rows.user_ids,
            &rows.seqs,
            &rows.types,
            &rows.titles,
            &rows.messages,
            &rows.ticket_ids,
            &rows.ticket_keys,
            &rows.project_ids,
            &rows.occurred_at,
            &rows.event_ids,
            &rows.positions,
        ],
    )
    .await?;
    Ok(())
}

/// Moves each user's head on by their notices in `pending`; returns each
/// user's first new seq.
async fn advance_heads(
    tx: &Transaction<'_>,
    tables: &Tables,
    pending: &[Pending<'_>],
) -> Result<HashMap<Uuid, i64>, StoreError> {
    let mut counts: BTreeMap<Uuid, i64> = BTreeMap::new();
    for p in pending {
        *counts.entry(p.notice.user_id).or_default() += 1;
    }
    let (users, added): (Vec<Uuid>, Vec<i64>) = counts.into_iter().unzip();
    let heads = tables.name("rm_notification_heads");
    let sql = format!(
        "INSERT INTO {heads} AS h (user_id, last_seq) {} ORDER BY 1
         ON CONFLICT (user_id) DO UPDATE SET last_seq = h.last_seq + EXCLUDED.last_seq
         RETURNING user_id, last_seq",
        unnest_rows(&["uuid", "bigint"])
    );
    let by_user: HashMap<Uuid, i64> = users.iter().copied().zip(added.iter().copied()).collect();
    let mut first = HashMap::with_capacity(users.len());
    for row in tx.query(&sql, &[&users, &added]).await? {
        let user: Uuid = row.try_get(0)?;
        let last: i64 = row.try_get(1)?;
        first.insert(user, last - by_user.get(&user).copied().unwrap_or(0) + 1);
    }
    Ok(first)
}

/// The columns of `rm_notifications` rows, one array each, for one set-based insert.
#[derive(Default)]
struct Rows<'a> {
    ids: Vec<Uuid>,
    user_ids: Vec<Uuid>,
    seqs: Vec<i64>,
    types: Vec<&'static str>,
    titles: Vec<&'a str>,
    messages: Vec<&'a str>,
    ticket_ids: Vec<Uuid>,
    ticket_keys: Vec<&'a str>,
    project_ids: Vec<Uuid>,
    occurred_at: Vec<DateTime<Utc>>,
    event_ids: Vec<Uuid>,
    positions: Vec<i64>,
}

impl<'a> Rows<'a> {
    fn push(&mut self, p: &'a Pending<'a>, seq: i64) {
        let (event, notice) = (p.event, &p.notice);
        self.ids
            .push(notification_id(event.event_id, notice.user_id));
        self.user_ids.push(notice.user_id);
        self.seqs.push(seq);
        self.types.push(notice.notification_type.as_str());
        self.titles.push(&notice.title);
        self.messages.push(&notice.message);
        self.ticket_ids.push(event.stream_id);
        self.ticket_keys.push(&p.ticket_key);
        self.project_ids.push(event.project_id);
        self.occurred_at.push(event.occurred_at);
        self.event_ids.push(event.event_id);
        self.positions.push(event.position);
    }
}
