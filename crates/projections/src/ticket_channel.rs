//! The ticket channel: every ticket event's WebSocket message, rendered
//! once and stored by project and seq (`rm_ticket_messages`), for the live
//! publish and for replay on reconnect.
//!
//! A message shows the ticket as the event left it, so this projection keeps
//! its own copy of every live ticket's state (`rm_channel_tickets`), advanced
//! with the aggregate's own `apply`. The events' seqs are the store's
//! (contiguous per project, assigned when appending), and the rendering
//! depends on nothing but the log, so a rebuild reproduces every message
//! byte for byte.

use async_trait::async_trait;
use cqrs_es::Aggregate;
use ticketflow_store::{StoreError, StoredEvent};
use tokio_postgres::{Client, Transaction};

use crate::messages::{ticket_message, Channel, ChannelMessage};
use crate::{keep_ticket, unseen_ticket_event, Projection, Tables};

/// Projection "ticket_channel", owning the stored messages and its ticket
/// states.
#[derive(Debug, Clone, Copy, Default)]
pub struct TicketChannelProjection;

#[async_trait]
impl Projection for TicketChannelProjection {
    fn name(&self) -> &'static str {
        "ticket_channel"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["rm_ticket_messages", "rm_channel_tickets"]
    }

    async fn apply(
        &self,
        tx: &Transaction<'_>,
        tables: &Tables,
        event: &StoredEvent,
    ) -> Result<(), StoreError> {
        let states = tables.name("rm_channel_tickets");
        let Some((mut state, decoded)) = unseen_ticket_event(tx, &states, event).await? else {
            return Ok(());
        };
        let payload = decoded.payload.clone();
        state.apply(decoded);
        let message = ticket_message(event, &payload, &state)?;
        keep_ticket(tx, &states, &state).await?;
        let sql = format!(
            "INSERT INTO {} (project_id, seq, position, message) VALUES ($1, $2, $3, $4)
             ON CONFLICT (project_id, seq) DO NOTHING",
            tables.name("rm_ticket_messages")
        );
        tx.execute(
            &sql,
            &[&event.project_id, &event.seq, &event.position, &message],
        )
        .await?;
        Ok(())
    }

    async fn messages(
        &self,
        client: &Client,
        after: i64,
        upto: i64,
    ) -> Result<Vec<ChannelMessage>, StoreError> {
        let rows = client
            .query(
                "SELECT project_id, seq, message FROM rm_ticket_messages
                 WHERE position > $1 AND position <= $2 ORDER BY position",
                &[&after, &upto],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ChannelMessage {
                    channel: Channel::Tickets {
                        project_id: r.try_get(0)?,
                    },
                    seq: r.try_get(1)?,
                    json: r.try_get(2)?,
                })
            })
            .collect()
    }
}
