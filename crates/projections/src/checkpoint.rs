//! Applying events to a projection exactly once.
//!
//! JetStream delivers at least once and may redeliver a batch after a crash,
//! so each batch is applied in one transaction together with the move of the
//! projection's checkpoint: what a committed checkpoint covers is never
//! applied again, and what it does not cover was never applied at all.
//!
//! Every projection sees every event, and global positions are contiguous
//! (1..N, taken under one lock in the appending transaction), so the next
//! event a projection needs is always `checkpoint + 1`. A batch that does not
//! continue from there is refused as a [`Applied::Gap`], untouched, for the
//! caller to fill from the event store.

use ticketflow_store::{StoreError, StoredEvent};

use crate::remembered::Remembered;
use crate::{Projection, ReadStore, ReadTx};

/// What [`apply_batch`] did.
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
/// The checkpoint is locked first ([`crate::ReadTx::lock_checkpoint`]), so
/// two workers of one projection take turns, and a rebuild's swap, which
/// takes the same lock, never interleaves with a batch.
pub async fn apply_batch(
    reads: &dyn ReadStore,
    projection: &dyn Projection,
    events: &[StoredEvent],
) -> Result<Applied, StoreError> {
    apply_in(reads.begin().await?, projection, events).await
}

/// [`apply_batch`] for a worker applying batch after batch: the ticket
/// states it has seen come from `remembered` rather than the database.
pub async fn apply_batch_remembering(
    reads: &dyn ReadStore,
    projection: &dyn Projection,
    events: &[StoredEvent],
    remembered: &mut Remembered,
) -> Result<Applied, StoreError> {
    let tx = remembered.wrap(reads.begin().await?);
    apply_in(Box::new(tx), projection, events).await
}

async fn apply_in(
    mut tx: Box<dyn ReadTx + '_>,
    projection: &dyn Projection,
    events: &[StoredEvent],
) -> Result<Applied, StoreError> {
    let at = tx.lock_checkpoint(projection.name()).await?;
    let fresh: Vec<&StoredEvent> = events.iter().filter(|e| e.position > at).collect();
    if !continues_from(at, &fresh) {
        tx.rollback().await?;
        return Ok(Applied::Gap {
            expected_from: at + 1,
        });
    }
    let Some(last) = fresh.last().map(|e| e.position) else {
        tx.rollback().await?;
        return Ok(Applied::Done {
            applied: 0,
            position: at,
        });
    };
    projection.apply(tx.as_mut(), &fresh).await?;
    tx.set_checkpoint(projection.name(), last).await?;
    tx.commit().await?;
    Ok(Applied::Done {
        applied: fresh.len(),
        position: last,
    })
}

/// Whether `events` are exactly the positions `at + 1`, `at + 2`, ...
fn continues_from(at: i64, events: &[&StoredEvent]) -> bool {
    events
        .iter()
        .zip(at + 1..)
        .all(|(event, expected)| event.position == expected)
}
