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

use ticketflow_nats::Channel;

use crate::messages::{ticket_message, ChannelMessage};
use crate::read_store::{MessageRow, ReadTx, StateTable};
use crate::ticket_states::{OnDelete, TicketStates};
use crate::Projection;

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

    fn insert_only(&self) -> &'static [&'static str] {
        &["rm_ticket_messages"]
    }

    async fn apply(
        &self,
        tx: &mut dyn ReadTx,
        events: &[&StoredEvent],
    ) -> Result<Vec<ChannelMessage>, StoreError> {
        let table = StateTable::Channel;
        let mut states = TicketStates::load(tx, table, events, OnDelete::Drop).await?;
        let mut rows = Vec::new();
        for event in events {
            let judge = |_: &_, decoded: &TicketEvent| decoded.payload.clone();
            let Some((payload, after)) = states.advance(event, judge)? else {
                continue;
            };
            let (seq, message) = ticket_message(event, &payload, after)?;
            rows.push(MessageRow {
                project_id: event.project_id,
                seq,
                position: event.position,
                message,
            });
        }
        states.save(tx, table).await?;
        if !rows.is_empty() {
            tx.rows().insert_ticket_messages(&rows).await?;
        }
        // The stored text itself: a replay reads back these very bytes.
        Ok(rows
            .into_iter()
            .map(|row| ChannelMessage {
                channel: Channel::Tickets {
                    project_id: row.project_id,
                },
                seq: row.seq,
                json: row.message,
            })
            .collect())
    }
}
