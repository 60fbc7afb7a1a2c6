//! The ticket states a projection keeps beside its rows (a `ticket_id`,
//! `state` table), handled a batch at a time: the states the batch touches
//! are read at once, advanced in memory event by event, and the changed
//! ones written back at once.
//!
//! A batch must build what applying its events one by one builds, wherever
//! the batch boundaries fall (a rebuild's batches are not the live worker's),
//! so a state dropped on deletion reads as the empty state again within the
//! batch too, as it would from the table.

use std::collections::{HashMap, HashSet};

use cqrs_es::Aggregate;
use ticketflow_domain::{Ticket, TicketEvent, TicketPayload};
use ticketflow_store::{StoreError, StoredEvent};
use uuid::Uuid;

use crate::read_store::{ReadTx, StateTable};

/// What happens to a deleted ticket's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnDelete {
    /// Kept, flagged deleted (the tickets read model answers 404 from it).
    Keep,
    /// Dropped: no event follows a deletion, so the state is dead weight.
    Drop,
}

struct Slot {
    state: Ticket,
    /// Position of the last event applied in this batch; 0 if none.
    position: i64,
}

/// The states of the tickets one batch touches.
pub(crate) struct TicketStates {
    slots: HashMap<Uuid, Slot>,
    on_delete: OnDelete,
}

impl TicketStates {
    /// Reads from `table` the states of the tickets `events` touch; a
    /// ticket without a row starts from the empty state. A ticket whose
    /// first event here is its first of all (version 1) has none to read.
    pub(crate) async fn load(
        tx: &mut dyn ReadTx,
        table: StateTable,
        events: &[&StoredEvent],
        on_delete: OnDelete,
    ) -> Result<Self, StoreError> {
        let mut touched = HashSet::new();
        let ids: Vec<Uuid> = events
            .iter()
            .filter(|e| e.stream_type == "ticket" && touched.insert(e.stream_id))
            .filter(|e| e.version > 1)
            .map(|e| e.stream_id)
            .collect();
        let mut slots = HashMap::with_capacity(ids.len());
        if !ids.is_empty() {
            for (id, state) in tx.load_states(table, &ids).await? {
                slots.insert(id, Slot { state, position: 0 });
            }
        }
        Ok(Self { slots, on_delete })
    }

    /// Applies `event` to its ticket's state if the state has not seen it
    /// (its version says which events it has: a guard besides the
    /// checkpoint). `judge` sees the state before the event and the decoded
    /// event first, and its answer is returned with the state after it;
    /// `None` for an event that is not a ticket's or was seen.
    pub(crate) fn advance<T>(
        &mut self,
        event: &StoredEvent,
        judge: impl FnOnce(&Ticket, &TicketEvent) -> T,
    ) -> Result<Option<(T, &Ticket)>, StoreError> {
        if event.stream_type != "ticket" {
            return Ok(None);
        }
        let decoded = event.decode::<TicketPayload>()?;
        let slot = self.slots.entry(event.stream_id).or_insert_with(|| Slot {
            state: Ticket::default(),
            position: 0,
        });
        if self.on_delete == OnDelete::Drop && slot.state.deleted {
            slot.state = Ticket::default();
        }
        if slot.state.version as i64 >= event.version {
            return Ok(None);
        }
        let verdict = judge(&slot.state, &decoded);
        slot.state.apply(decoded);
        slot.position = event.position;
        Ok(Some((verdict, &slot.state)))
    }

    /// The states this batch changed, each with the position of the last
    /// event applied to it.
    pub(crate) fn changed(&self) -> impl Iterator<Item = (&Ticket, i64)> {
        self.slots
            .values()
            .filter(|s| s.position > 0)
            .map(|s| (&s.state, s.position))
    }

    /// Writes the changed states back to `table`, dropping deleted ones
    /// under [`OnDelete::Drop`].
    pub(crate) async fn save(
        &self,
        tx: &mut dyn ReadTx,
        table: StateTable,
    ) -> Result<(), StoreError> {
        let (mut states, mut dropped) = (Vec::new(), Vec::new());
        for (state, _) in self.changed() {
            if self.on_delete == OnDelete::Drop && state.deleted {
                dropped.push(state.id);
            } else {
                states.push(state);
            }
        }
        if !states.is_empty() {
            tx.save_states(table, &states).await?;
        }
        if !dropped.is_empty() {
            tx.drop_states(table, &dropped).await?;
        }
        Ok(())
    }
}

/// Splits `ids` by what a memory of states tells of each (`memory`: the
/// state, `Some(None)` for known to have none, `None` for unknown): the
/// states it holds, and the ids it knows nothing of, left for the table.
pub(crate) fn recall<'a>(
    ids: &[Uuid],
    memory: impl Fn(Uuid) -> Option<Option<&'a Ticket>>,
) -> (Vec<(Uuid, Ticket)>, Vec<Uuid>) {
    let mut found = Vec::with_capacity(ids.len());
    let mut unknown = Vec::new();
    for id in ids {
        match memory(*id) {
            Some(Some(state)) => found.push((*id, state.clone())),
            Some(None) => {}
            None => unknown.push(*id),
        }
    }
    (found, unknown)
}
