//! The ticket states a live projection worker remembers between batches, so
//! that a batch reads from its state table only the tickets it has not seen.
//!
//! What a projection's state table holds is a function of the log up to the
//! projection's checkpoint, and every writer takes the checkpoint's lock
//! before touching the table. So states remembered at checkpoint `c` are
//! exactly the table's rows for as long as the checkpoint stands at `c`:
//! when a batch locks the checkpoint and finds it where the last commit this
//! worker saw left it, whatever it remembers holds; when it finds it
//! elsewhere (another instance led for a while, a rebuild swapped its
//! tables in, a commit's outcome was lost), it forgets everything first.
//! Writes still go to the table in the same transaction: the memory only
//! spares the reads.

use std::collections::HashMap;

use async_trait::async_trait;
use ticketflow_domain::Ticket;
use ticketflow_store::StoreError;
use uuid::Uuid;

use crate::read_store::{CommentRow, MessageRow, NotificationRow, ReadTx, StateTable, TicketRow};

/// States remembered per projection, at most; past it they are all
/// forgotten at once (a live worker's batches touch recent tickets, so the
/// next ones come back quickly).
const CAPACITY: usize = 10_000;

/// One projection's remembered states and the checkpoint they are true at.
#[derive(Default)]
pub struct Remembered {
    /// `None` until a batch has locked the checkpoint.
    at: Option<i64>,
    /// `None` for a ticket known to have no row.
    states: HashMap<(StateTable, Uuid), Option<Ticket>>,
}

impl Remembered {
    /// Wraps `tx` (a transaction that has not locked its checkpoint yet) so
    /// that its state reads come from memory where they can.
    pub(crate) fn wrap(&mut self, tx: Box<dyn ReadTx>) -> RememberingTx<'_> {
        RememberingTx {
            tx,
            remembered: self,
            locked_at: None,
            written: Vec::new(),
            moved_to: None,
        }
    }

    fn forget_unless_at(&mut self, checkpoint: i64) {
        if self.at != Some(checkpoint) || self.states.len() > CAPACITY {
            self.states.clear();
            self.at = Some(checkpoint);
        }
    }
}

/// A transaction whose state reads go through [`Remembered`]; what it
/// writes is remembered once it commits.
pub(crate) struct RememberingTx<'a> {
    tx: Box<dyn ReadTx>,
    remembered: &'a mut Remembered,
    /// The checkpoint this transaction locked.
    locked_at: Option<i64>,
    /// The states written, in order, to remember after the commit.
    written: Vec<((StateTable, Uuid), Option<Ticket>)>,
    moved_to: Option<i64>,
}

impl RememberingTx<'_> {
    fn write(&mut self, table: StateTable, id: Uuid, state: Option<&Ticket>) {
        self.written.push(((table, id), state.cloned()));
    }
}

#[async_trait]
impl ReadTx for RememberingTx<'_> {
    async fn load_states(
        &mut self,
        table: StateTable,
        ids: &[Uuid],
    ) -> Result<Vec<(Uuid, Ticket)>, StoreError> {
        if self.locked_at.is_none() {
            // Nothing vouches for the memory before the lock.
            return self.tx.load_states(table, ids).await;
        }
        let mut found = Vec::with_capacity(ids.len());
        let mut unknown = Vec::new();
        for id in ids {
            match self.remembered.states.get(&(table, *id)) {
                Some(Some(state)) => found.push((*id, state.clone())),
                Some(None) => {}
                None => unknown.push(*id),
            }
        }
        if unknown.is_empty() {
            return Ok(found);
        }
        let loaded = self.tx.load_states(table, &unknown).await?;
        // Read under the lock at `at`: true for as long as memory is.
        let states = &mut self.remembered.states;
        for id in &unknown {
            states.insert((table, *id), None);
        }
        for (id, state) in &loaded {
            states.insert((table, *id), Some(state.clone()));
        }
        found.extend(loaded);
        Ok(found)
    }

    async fn save_states(
        &mut self,
        table: StateTable,
        states: &[&Ticket],
    ) -> Result<(), StoreError> {
        self.tx.save_states(table, states).await?;
        for state in states {
            self.write(table, state.id, Some(state));
        }
        Ok(())
    }

    async fn drop_states(&mut self, table: StateTable, ids: &[Uuid]) -> Result<(), StoreError> {
        self.tx.drop_states(table, ids).await?;
        for id in ids {
            self.write(table, *id, None);
        }
        Ok(())
    }

    async fn upsert_tickets(&mut self, rows: &[TicketRow<'_>]) -> Result<(), StoreError> {
        self.tx.upsert_tickets(rows).await?;
        for row in rows {
            self.write(StateTable::Tickets, row.state.id, Some(row.state));
        }
        Ok(())
    }

    async fn insert_comments(&mut self, rows: &[CommentRow<'_>]) -> Result<(), StoreError> {
        self.tx.insert_comments(rows).await
    }

    async fn advance_heads(
        &mut self,
        added: &[(Uuid, i64)],
    ) -> Result<Vec<(Uuid, i64)>, StoreError> {
        self.tx.advance_heads(added).await
    }

    async fn insert_notifications(
        &mut self,
        rows: &[NotificationRow<'_>],
    ) -> Result<(), StoreError> {
        self.tx.insert_notifications(rows).await
    }

    async fn insert_ticket_messages(&mut self, rows: &[MessageRow]) -> Result<(), StoreError> {
        self.tx.insert_ticket_messages(rows).await
    }

    async fn lock_checkpoint(&mut self, name: &str) -> Result<i64, StoreError> {
        let at = self.tx.lock_checkpoint(name).await?;
        self.remembered.forget_unless_at(at);
        self.locked_at = Some(at);
        Ok(at)
    }

    async fn set_checkpoint(&mut self, name: &str, position: i64) -> Result<(), StoreError> {
        self.tx.set_checkpoint(name, position).await?;
        self.moved_to = Some(position);
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        let this = *self;
        let remembered = this.remembered;
        // Until the commit is known to have happened, the table may be
        // before or after it: nothing remembered can be vouched for.
        remembered.at = None;
        this.tx.commit().await?;
        if let Some(at) = this.locked_at {
            remembered.states.extend(this.written);
            remembered.at = Some(this.moved_to.unwrap_or(at));
        }
        Ok(())
    }

    async fn rollback(self: Box<Self>) -> Result<(), StoreError> {
        self.tx.rollback().await
    }
}
