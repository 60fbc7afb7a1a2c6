//! The tickets read model: each ticket's current state, one row per ticket.
//!
//! The state is the domain [`ticketflow_domain::Ticket`] itself, advanced with the aggregate's
//! own `apply`, so the read model can never disagree with what a command sees.
//! The columns beside it exist for listing and filtering.

use async_trait::async_trait;
use ticketflow_store::{StoreError, StoredEvent};

use crate::read_store::{ReadTx, StateTable, TicketRow};
use crate::ticket_states::{OnDelete, TicketStates};
use crate::{ChannelMessage, Projection};

/// Projection "tickets", owning `rm_tickets`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TicketsProjection;

#[async_trait]
impl Projection for TicketsProjection {
    fn name(&self) -> &'static str {
        "tickets"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["rm_tickets"]
    }

    /// A deleted ticket keeps its row, flagged.
    async fn apply(
        &self,
        tx: &mut dyn ReadTx,
        events: &[&StoredEvent],
    ) -> Result<Vec<ChannelMessage>, StoreError> {
        let mut states =
            TicketStates::load(tx, StateTable::Tickets, events, OnDelete::Keep).await?;
        for event in events {
            states.advance(event, |_, _| ())?;
        }
        let rows: Vec<TicketRow> = states
            .changed()
            .map(|(state, position)| TicketRow { state, position })
            .collect();
        if !rows.is_empty() {
            tx.upsert_tickets(&rows).await?;
        }
        Ok(Vec::new())
    }
}
