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

use async_trait::async_trait;
use cqrs_es::Aggregate;
use ticketflow_domain::{notices, Notice};
use ticketflow_store::{StoreError, StoredEvent};
use tokio_postgres::{Client, Transaction};
use uuid::Uuid;

use crate::messages::ChannelMessage;
use crate::{keep_ticket, unseen_ticket_event, Projection, Tables};

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

    async fn apply(
        &self,
        tx: &Transaction<'_>,
        tables: &Tables,
        event: &StoredEvent,
    ) -> Result<(), StoreError> {
        let states = tables.name("rm_notify_tickets");
        let Some((mut state, decoded)) = unseen_ticket_event(tx, &states, event).await? else {
            return Ok(());
        };
        let notices = notices(&state, &decoded);
        state.apply(decoded);
        keep_ticket(tx, &states, &state).await?;
        for notice in &notices {
            insert(tx, tables, event, &state.key, notice).await?;
        }
        Ok(())
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

/// Stores one notification under the user's next seq. The head row is
/// locked by the increment until commit, so seqs stay contiguous even if
/// two transactions ever wrote for one user.
async fn insert(
    tx: &Transaction<'_>,
    tables: &Tables,
    event: &StoredEvent,
    ticket_key: &str,
    notice: &Notice,
) -> Result<(), StoreError> {
    let heads = tables.name("rm_notification_heads");
    let seq: i64 = tx
        .query_one(
            &format!(
                "INSERT INTO {heads} AS h (user_id, last_seq) VALUES ($1, 1)
                 ON CONFLICT (user_id) DO UPDATE SET last_seq = h.last_seq + 1
                 RETURNING last_seq"
            ),
            &[&notice.user_id],
        )
        .await?
        .try_get(0)?;
    let sql = format!(
        "INSERT INTO {} (notification_id, user_id, seq, notification_type, title, message,
            ticket_id, ticket_key, project_id, occurred_at, event_id, position)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        tables.name("rm_notifications")
    );
    tx.execute(
        &sql,
        &[
            &notification_id(event.event_id, notice.user_id),
            &notice.user_id,
            &seq,
            &notice.notification_type.as_str(),
            &notice.title,
            &notice.message,
            &event.stream_id,
            &ticket_key,
            &event.project_id,
            &event.occurred_at,
            &event.event_id,
            &event.position,
        ],
    )
    .await?;
    Ok(())
}
