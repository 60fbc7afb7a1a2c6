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
use tokio_postgres::{Client, Transaction};

use crate::{Projection, Tables};

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

/// Applies `events` (in position order) to the live tables of `projection`,
/// skipping those its checkpoint already covers, in one transaction.
///
/// The checkpoint row is locked first (`FOR UPDATE`), so two workers of one
/// projection take turns, and a rebuild's swap, which takes the same lock,
/// never interleaves with a batch.
pub async fn apply_batch(
    client: &mut Client,
    projection: &dyn Projection,
    events: &[StoredEvent],
) -> Result<Applied, StoreError> {
    let tx = client.transaction().await?;
    let at = lock_checkpoint(&tx, projection.name()).await?;
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
    projection.apply(&tx, &Tables::live(), &fresh).await?;
    set_checkpoint(&tx, projection.name(), last).await?;
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

/// The checkpoint of the projection `name`; 0 before its first batch.
pub async fn checkpoint(client: &Client, name: &str) -> Result<i64, StoreError> {
    let row = client
        .query_opt(
            "SELECT position FROM projection_checkpoints WHERE name = $1",
            &[&name],
        )
        .await?;
    Ok(row.map_or(Ok(0), |r| r.try_get(0))?)
}

/// Every projection's checkpoint, by name.
pub async fn checkpoints(client: &Client) -> Result<Vec<(String, i64)>, StoreError> {
    let rows = client
        .query(
            "SELECT name, position FROM projection_checkpoints ORDER BY name",
            &[],
        )
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// Locks the checkpoint row of `name` until the transaction ends, creating
/// it at 0 first if missing, and returns its position.
pub(crate) async fn lock_checkpoint(tx: &Transaction<'_>, name: &str) -> Result<i64, StoreError> {
    tx.execute(
        "INSERT INTO projection_checkpoints (name, position) VALUES ($1, 0)
         ON CONFLICT (name) DO NOTHING",
        &[&name],
    )
    .await?;
    let row = tx
        .query_one(
            "SELECT position FROM projection_checkpoints WHERE name = $1 FOR UPDATE",
            &[&name],
        )
        .await?;
    Ok(row.try_get(0)?)
}

pub(crate) async fn set_checkpoint(
    tx: &Transaction<'_>,
    name: &str,
    position: i64,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE projection_checkpoints SET position = $2, updated_at = now() WHERE name = $1",
        &[&name, &position],
    )
    .await?;
    Ok(())
}
