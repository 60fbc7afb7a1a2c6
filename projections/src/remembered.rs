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

use crate::read_store::{ReadTx, RowWrites, StateTable, TicketRow};
use crate::ticket_states::recall;

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
    /// Makes the memory true of the checkpoint `at` just locked: kept if it
    /// was remembered there, else forgotten.
    pub(crate) fn lock_at(&mut self, at: i64) {
        if self.at != Some(at) || self.states.len() > CAPACITY {
            self.states.clear();
        }
        self.at = Some(at);
    }

    /// A view of `tx` (after [`Remembered::lock_at`]) whose state reads come
    /// from memory where they can.
    pub(crate) fn view<'a>(&'a mut self, tx: &'a mut dyn ReadTx) -> RememberingTx<'a> {
        RememberingTx {
            tx,
            remembered: self,
            written: Vec::new(),
        }
    }

    /// Until a commit is known to have happened the table may be before or
    /// after it: nothing remembered can be vouched for.
    pub(crate) fn committing(&mut self) {
        self.at = None;
    }

    /// The commit moving the checkpoint to `at` happened, writing `written`.
    pub(crate) fn committed(&mut self, written: Written, at: i64) {
        self.states.extend(written.0);
        self.at = Some(at);
    }
}

/// The states a batch wrote, in order.
#[derive(Default)]
pub(crate) struct Written(Vec<((StateTable, Uuid), Option<Ticket>)>);

/// A batch's transaction whose state reads go through [`Remembered`].
pub(crate) struct RememberingTx<'a> {
    tx: &'a mut dyn ReadTx,
    remembered: &'a mut Remembered,
    written: Vec<((StateTable, Uuid), Option<Ticket>)>,
}

impl RememberingTx<'_> {
    /// What the batch wrote, to remember once it commits.
    pub(crate) fn written(self) -> Written {
        Written(self.written)
    }

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
        let states = &self.remembered.states;
        let (mut found, unknown) = recall(ids, |id| states.get(&(table, id)).map(Option::as_ref));
        if unknown.is_empty() {
            return Ok(found);
        }
        let loaded = self.tx.load_states(table, &unknown).await?;
        // Read under the checkpoint's lock: true for as long as memory is.
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

    fn rows(&mut self) -> &mut dyn RowWrites {
        self.tx.rows()
    }
}
