//! The tickets read model: each ticket's current state, one row per ticket.
//!
//! The state is the domain [`Ticket`] itself, advanced with the aggregate's
//! own `apply`, so the read model can never disagree with what a command sees.
//! The columns beside it exist for listing and filtering.

use async_trait::async_trait;
use ticketflow_domain::Ticket;
use ticketflow_store::{StoreError, StoredEvent};
use tokio_postgres::types::Json;
use tokio_postgres::Transaction;
use uuid::Uuid;

use crate::ticket_states::{OnDelete, TicketStates};
use crate::{unnest_rows, Projection, Tables};

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
        events: &[&StoredEvent],
    ) -> Result<(), StoreError> {
        let table = tables.name("rm_tickets");
        let mut states = TicketStates::load(tx, &table, events, OnDelete::Keep).await?;
        for event in events {
            states.advance(event, |_, _| ())?;
        }
        upsert(tx, &table, &states).await
    }
}

/// Writes the rows of the tickets `states` changed; a deleted ticket keeps
/// its row, flagged.
async fn upsert(
    tx: &Transaction<'_>,
    table: &str,
    states: &TicketStates,
) -> Result<(), StoreError> {
    let mut rows = Rows::default();
    for (state, position) in states.changed() {
        rows.push(state, position);
    }
    if rows.ids.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO {table}
           (ticket_id, project_id, number, status_id, assignee_id, deleted, state, last_position)
         {}
         ON CONFLICT (ticket_id) DO UPDATE SET
           project_id = EXCLUDED.project_id, number = EXCLUDED.number,
           status_id = EXCLUDED.status_id, assignee_id = EXCLUDED.assignee_id,
           deleted = EXCLUDED.deleted, state = EXCLUDED.state,
           last_position = EXCLUDED.last_position",
        unnest_rows(&["uuid", "uuid", "bigint", "bigint", "uuid", "boolean", "jsonb", "bigint"])
    );
    tx.execute(
        &sql,
        &[
            &rows.ids,
            &rows.project_ids,
            &rows.numbers,
            &rows.status_ids,
            &rows.assignee_ids,
            &rows.deleted,
            &rows.states,
            &rows.positions,
        ],
    )
    .await?;
    Ok(())
}

/// The columns of `rm_tickets` rows, one array each, for one set-based upsert.
#[derive(Default)]
struct Rows<'a> {
    ids: Vec<Uuid>,
    project_ids: Vec<Uuid>,
    numbers: Vec<i64>,
    status_ids: Vec<Option<i64>>,
    assignee_ids: Vec<Option<Uuid>>,
    deleted: Vec<bool>,
    states: Vec<Json<&'a Ticket>>,
    positions: Vec<i64>,
}

impl<'a> Rows<'a> {
    fn push(&mut self, state: &'a Ticket, position: i64) {
        self.ids.push(state.id);
        self.project_ids.push(state.project_id);
        self.numbers.push(state.number as i64);
        self.status_ids.push(state.status.as_ref().map(|s| s.id));
        self.assignee_ids
            .push(state.assignee.as_ref().map(|a| a.id));
        self.deleted.push(state.deleted);
        self.states.push(Json(state));
        self.positions.push(position);
    }
}
