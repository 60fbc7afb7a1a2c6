//! Applying events to projections exactly once.
//!
//! JetStream delivers at least once and may redeliver a batch after a crash,
//! so each batch is applied in one transaction together with the move of the
//! projections' checkpoints: what a committed checkpoint covers is never
//! applied again, and what it does not cover was never applied at all.
//!
//! Every projection sees every event, and global positions are contiguous
//! (1..N, taken under one lock in the appending transaction), so the next
//! event a projection needs is always `checkpoint + 1`. A batch that does not
//! continue from there is refused as a [`Applied::Gap`], untouched, for the
//! caller to fill from the event store.

use ticketflow_store::{StoreError, StoredEvent};

use crate::remembered::Remembered;
use crate::{ChannelMessage, Projection, ReadStore};

/// What a batch did to one projection, and the channel messages it
/// stored: committed by the time the caller sees them, and to be published.
#[derive(Debug)]
pub struct Outcome {
    pub applied: Applied,
    pub messages: Vec<ChannelMessage>,
}

/// Where a batch left one projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The checkpoint now stands at `position`; `applied` events were new
    /// (0 when the whole batch had been applied before: a redelivery).
    Done { applied: usize, position: i64 },
    /// The batch skips events: nothing was applied, and the projection needs
    /// the events from `expected_from` on.
    Gap { expected_from: i64 },
}

/// Applies `events` (in position order) to the live read model of
/// `projection`, skipping those its checkpoint already covers, in one
/// transaction of `reads`.
///
/// The checkpoint is locked first ([`crate::BatchTx::lock_checkpoints`]), so
/// two workers of one projection take turns, and a rebuild's swap, which
/// takes the same lock, never interleaves with a batch.
pub async fn apply_batch(
    reads: &dyn ReadStore,
    projection: &dyn Projection,
    events: &[StoredEvent],
) -> Result<Outcome, StoreError> {
    let mut remembered = Remembered::default();
    let outcomes =
        apply_batch_together(reads, &mut [(projection, &mut remembered)], events).await?;
    outcomes
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::Corrupt("a batch of one projection had no outcome".into()))
}

/// [`apply_batch`] for several projections at once, in one transaction
/// (one commit rather than one per projection), each with the ticket
/// states its worker remembers from earlier batches. Returns what each
/// did, in order: a projection whose checkpoint the batch does not continue
/// is left alone ([`Applied::Gap`]) while the others apply it.
pub async fn apply_batch_together(
    reads: &dyn ReadStore,
    projections: &mut [(&dyn Projection, &mut Remembered)],
    events: &[StoredEvent],
) -> Result<Vec<Outcome>, StoreError> {
    let mut tx = reads.begin().await?;
    let names: Vec<&str> = projections.iter().map(|(p, _)| p.name()).collect();
    let checkpoints = tx.lock_checkpoints(&names).await?;
    let mut outcomes = Vec::with_capacity(projections.len());
    let mut moved = Vec::new();
    for (i, at) in checkpoints.into_iter().enumerate() {
        let (projection, remembered) = &mut projections[i];
        let fresh: Vec<&StoredEvent> = events.iter().filter(|e| e.position > at).collect();
        let (applied, messages) = match fresh.last() {
            _ if !continues_from(at, &fresh) => {
                let gap = Applied::Gap {
                    expected_from: at + 1,
                };
                (gap, Vec::new())
            }
            None => {
                let redelivered = Applied::Done {
                    applied: 0,
                    position: at,
                };
                (redelivered, Vec::new())
            }
            Some(last) => {
                remembered.lock_at(at);
                let mut view = remembered.view(&mut *tx);
                let messages = projection.apply(&mut view, &fresh).await?;
                moved.push((i, view.written(), last.position));
                let done = Applied::Done {
                    applied: fresh.len(),
                    position: last.position,
                };
                (done, messages)
            }
        };
        outcomes.push(Outcome { applied, messages });
    }
    if moved.is_empty() {
        tx.rollback().await?;
        return Ok(outcomes);
    }
    let moves: Vec<(&str, i64)> = moved.iter().map(|(i, _, to)| (names[*i], *to)).collect();
    tx.set_checkpoints(&moves).await?;
    for (i, _, _) in &moved {
        projections[*i].1.committing();
    }
    tx.commit().await?;
    for (i, written, to) in moved {
        projections[i].1.committed(written, to);
    }
    Ok(outcomes)
}

/// Whether `events` are exactly the positions `at + 1`, `at + 2`, ...
fn continues_from(at: i64, events: &[&StoredEvent]) -> bool {
    events
        .iter()
        .zip(at + 1..)
        .all(|(event, expected)| event.position == expected)
}
