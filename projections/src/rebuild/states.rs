//! The ticket states a rebuild keeps in memory between its batches.
//!
//! Nobody but the rebuild writes its copies, so the states it last wrote are
//! the states the copies would hold: each batch reads them from here and
//! writes them back here, and they go to the copies only when too many are
//! held ([`super::Limits::kept_states`]) and once the replay is done.
//! Without this, every batch read and rewrote the state of every ticket it
//! touched, in three tables (`rm_tickets`, `rm_notify_tickets`,
//! `rm_channel_tickets`), as JSON each way, as many times over as there
//! are batches.

use std::collections::HashMap;

use async_trait::async_trait;
use deadpool_postgres::Object;
use ticketflow_domain::Ticket;
use ticketflow_store::StoreError;
use uuid::Uuid;

use crate::pg::PgReadTx;
use crate::read_store::{BatchTx, ReadTx, RowWrites, StateTable, TicketRow};
use crate::ticket_states::recall;
use crate::Tables;

/// What a batch last did to one ticket's state in one table.
enum Kept {
    /// Saved (for `rm_tickets`, with its row's position).
    Saved { state: Box<Ticket>, position: i64 },
    /// Dropped.
    Dropped,
}

impl Kept {
    fn state(&self) -> Option<&Ticket> {
        match self {
            Self::Saved { state, .. } => Some(state),
            Self::Dropped => None,
        }
    }
}

/// The states written since the copies last got them.
#[derive(Default)]
pub(super) struct States {
    kept: HashMap<(StateTable, Uuid), Kept>,
    /// Whether the copies hold any states yet: until they do, a state not
    /// kept here is a state nobody wrote.
    written_out: bool,
}

/// A rebuild's transaction on its copies, with the states of [`States`].
pub(super) struct StatesTx {
    tx: PgReadTx,
    states: States,
}

impl StatesTx {
    /// Begins a transaction on `client` writing to the rebuild's `copies`.
    pub(super) async fn begin(
        client: Object,
        copies: Tables,
        states: States,
    ) -> Result<Self, StoreError> {
        let tx = PgReadTx::begin(client, copies).await?;
        Ok(Self { tx, states })
    }

    /// The transaction, for the rebuild's own statements.
    pub(super) fn tx(&self) -> &PgReadTx {
        &self.tx
    }

    /// Writes every kept state to the copies (in this transaction) and
    /// forgets them.
    pub(super) async fn write_out(&mut self) -> Result<(), StoreError> {
        let kept = std::mem::take(&mut self.states.kept);
        let mut by_table: HashMap<StateTable, (Vec<TicketRow>, Vec<Uuid>)> = HashMap::new();
        for ((table, id), kept) in &kept {
            let (saved, dropped) = by_table.entry(*table).or_default();
            match kept {
                Kept::Saved { state, position } => saved.push(TicketRow {
                    state,
                    position: *position,
                }),
                Kept::Dropped => dropped.push(*id),
            }
        }
        for (table, (saved, dropped)) in by_table {
            if !saved.is_empty() && table == StateTable::Tickets {
                self.tx.upsert_tickets(&saved).await?;
            } else if !saved.is_empty() {
                let states: Vec<&Ticket> = saved.iter().map(|row| row.state).collect();
                self.tx.save_states(table, &states).await?;
            }
            if !dropped.is_empty() {
                self.tx.drop_states(table, &dropped).await?;
            }
        }
        self.states.written_out |= !kept.is_empty();
        Ok(())
    }

    /// Commits, first writing the states out if more than `at_most` are
    /// kept; hands back the connection and the states kept.
    pub(super) async fn commit_keep(
        mut self,
        at_most: usize,
    ) -> Result<(Object, States), StoreError> {
        if self.states.kept.len() > at_most {
            self.write_out().await?;
        }
        let client = self.tx.commit_keep().await?;
        Ok((client, self.states))
    }

    fn keep(&mut self, table: StateTable, state: &Ticket, position: i64) {
        let kept = Kept::Saved {
            state: Box::new(state.clone()),
            position,
        };
        self.states.kept.insert((table, state.id), kept);
    }
}

/// The kept states stand in for the copies' state tables; everything else
/// goes to the copies as it comes.
#[async_trait]
impl ReadTx for StatesTx {
    async fn load_states(
        &mut self,
        table: StateTable,
        ids: &[Uuid],
    ) -> Result<Vec<(Uuid, Ticket)>, StoreError> {
        let kept = &self.states.kept;
        let (mut found, elsewhere) = recall(ids, |id| kept.get(&(table, id)).map(Kept::state));
        if self.states.written_out && !elsewhere.is_empty() {
            found.extend(self.tx.load_states(table, &elsewhere).await?);
        }
        Ok(found)
    }

    async fn save_states(
        &mut self,
        table: StateTable,
        states: &[&Ticket],
    ) -> Result<(), StoreError> {
        if table == StateTable::Tickets {
            // Refused there, with the reason.
            return self.tx.save_states(table, states).await;
        }
        for state in states {
            self.keep(table, state, 0);
        }
        Ok(())
    }

    async fn drop_states(&mut self, table: StateTable, ids: &[Uuid]) -> Result<(), StoreError> {
        for id in ids {
            self.states.kept.insert((table, *id), Kept::Dropped);
        }
        Ok(())
    }

    async fn upsert_tickets(&mut self, rows: &[TicketRow<'_>]) -> Result<(), StoreError> {
        for row in rows {
            self.keep(StateTable::Tickets, row.state, row.position);
        }
        Ok(())
    }

    fn rows(&mut self) -> &mut dyn RowWrites {
        &mut self.tx
    }
}

#[async_trait]
impl BatchTx for StatesTx {
    async fn lock_checkpoints(&mut self, names: &[&str]) -> Result<Vec<i64>, StoreError> {
        self.tx.lock_checkpoints(names).await
    }

    async fn set_checkpoints(&mut self, moves: &[(&str, i64)]) -> Result<(), StoreError> {
        self.tx.set_checkpoints(moves).await
    }

    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        self.write_out().await?;
        Box::new(self.tx).commit().await
    }

    /// The states kept go with the transaction: they may hold its writes.
    async fn rollback(self: Box<Self>) -> Result<(), StoreError> {
        Box::new(self.tx).rollback().await
    }
}
