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
use ticketflow_domain::TicketEvent;
use ticketflow_store::{StoreError, StoredEvent};
use tokio_postgres::{Client, Transaction};
use uuid::Uuid;

use crate::messages::{ticket_message, Channel, ChannelMessage};
use crate::ticket_states::{OnDelete, TicketStates};
use crate::{unnest_rows, Projection, Tables};

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
        events: &[&StoredEvent],
    ) -> Result<(), StoreError> {
        let table = tables.name("rm_channel_tickets");
        let mut states = TicketStates::load(tx, &table, events, OnDelete::Drop).await?;
        let mut rows = Rows::default();
        for event in events {
            let judge = |_: &_, decoded: &TicketEvent| decoded.payload.clone();
            let Some((payload, after)) = states.advance(event, judge)? else {
                continue;
            };
            rows.push(event, ticket_message(event, &payload, after)?);
        }
        states.save(tx, &table).await?;
        if rows.positions.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "INSERT INTO {} (project_id, seq, position, message) {}
             ON CONFLICT (project_id, seq) DO NOTHING",
            tables.name("rm_ticket_messages"),
            unnest_rows(&["uuid", "bigint", "bigint", "text"])
        );
        tx.execute(
            &sql,
            &[
                &rows.project_ids,
                &rows.seqs,
                &rows.positions,
                &rows.messages,
            ],
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

/// The columns of `rm_ticket_messages` rows, one array each, for one set-based insert.
#[derive(Default)]
struct Rows {
    project_ids: Vec<Uuid>,
    seqs: Vec<Option<i64>>,
    positions: Vec<i64>,
    messages: Vec<String>,
}

impl Rows {
    fn push(&mut self, event: &StoredEvent, message: String) {
        self.project_ids.push(event.project_id);
        self.seqs.push(event.seq);
        self.positions.push(event.position);
        self.messages.push(message);
    }
}
