//! The tickets read model: each ticket's current state, one row per ticket.
//!
//! The state is the domain [`Ticket`] itself, advanced with the aggregate's
//! own `apply`, so the read model can never disagree with what a command sees.
//! The columns beside it exist for listing and filtering.

use async_trait::async_trait;
use cqrs_es::Aggregate;
use ticketflow_domain::Ticket;
use ticketflow_store::{StoreError, StoredEvent};
use tokio_postgres::Transaction;

use crate::{unseen_ticket_event, Projection, Tables};

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

    async fn apply(
        &self,
        tx: &Transaction<'_>,
        tables: &Tables,
        event: &StoredEvent,
    ) -> Result<(), StoreError> {
        let table = tables.name("rm_tickets");
        let Some((mut state, decoded)) = unseen_ticket_event(tx, &table, event).await? else {
            return Ok(());
        };
        state.apply(decoded);
        upsert(tx, &table, &state, event.position).await
    }
}

/// Writes the row of `state`; a deleted ticket keeps its row, flagged.
async fn upsert(
    tx: &Transaction<'_>,
    table: &str,
    state: &Ticket,
    position: i64,
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO {table}
           (ticket_id, project_id, number, status_id, assignee_id, deleted, state, last_position)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (ticket_id) DO UPDATE SET
           project_id = EXCLUDED.project_id, number = EXCLUDED.number,
           status_id = EXCLUDED.status_id, assignee_id = EXCLUDED.assignee_id,
           deleted = EXCLUDED.deleted, state = EXCLUDED.state,
           last_position = EXCLUDED.last_position"
    );
    let number = state.number as i64;
    let status_id = state.status.as_ref().map(|s| s.id);
    let assignee_id = state.assignee.as_ref().map(|a| a.id);
    tx.execute(
        &sql,
        &[
            &state.id,
            &state.project_id,
            &number,
            &status_id,
            &assignee_id,
            &state.deleted,
            &serde_json::to_value(state)?,
            &position,
        ],
    )
    .await?;
    Ok(())
}
