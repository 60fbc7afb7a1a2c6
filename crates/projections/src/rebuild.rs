//! Rebuilding a projection from the whole log, without readers ever seeing a
//! half-built model and without stopping the live worker for long.
//!
//! 1. Fresh copies of the projection's tables (`<table>_rebuild`, `LIKE ...`)
//!    are filled by replaying the log in batches, one transaction each, while
//!    the live tables keep serving and the live worker keeps applying. Their
//!    indexes are built once they are filled ([`indexes`]).
//! 2. One transaction then takes the projection's checkpoint row `FOR UPDATE`
//!    (the lock every live batch takes first, so the worker waits), applies the
//!    events that arrived meanwhile to the copies, drops the live tables, puts
//!    the copies in their place with the live tables' index and constraint
//!    names, and sets the checkpoint to what the copies hold. Readers see the
//!    old model until the commit and the new one after it.
//!
//! Only one rebuild of a projection runs at a time (a session advisory lock).

use std::time::{Duration, Instant};

use deadpool_postgres::{Object, Pool};
use ticketflow_store::{EventStore, StoreError, StoredEvent};
use tokio_postgres::Client;

mod indexes;

use crate::pg::PgReadTx;
use crate::{Projection, ReadTx, Tables};

/// Events read and applied per transaction while replaying: large, since a
/// batch costs a few statements whatever its size.
pub const REBUILD_BATCH: i64 = 10_000;

/// Arbitrary constant naming rebuild locks (with the projection's name hash).
const REBUILD_LOCK: i32 = 0x7462_6c64; // "tbld"

/// How far a rebuild has come, reported after every batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Events replayed so far.
    pub applied: u64,
    /// Position of the last replayed event.
    pub position: i64,
    /// The log's head when last looked at.
    pub head: i64,
    /// Events per second since the start.
    pub rate: f64,
}

/// What a finished rebuild did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rebuilt {
    /// The checkpoint the rebuilt tables stand at.
    pub position: i64,
    /// Events replayed, the catch-up included.
    pub applied: u64,
    pub elapsed: Duration,
}

/// Rebuilds `projection` from the whole log and swaps the result in.
///
/// Holds one connection of `pool` throughout and reads the log through
/// `events`, which needs connections of its own (so a pool of one would wait
/// on itself). Fails at once if a rebuild of the same projection is running.
pub async fn rebuild(
    pool: &Pool,
    events: &dyn EventStore,
    projection: &dyn Projection,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Rebuilt, StoreError> {
    let client = pool.get().await?;
    let name = projection.name();
    let locked: bool = client
        .query_one(
            "SELECT pg_try_advisory_lock($1, hashtext($2))",
            &[&REBUILD_LOCK, &name],
        )
        .await?
        .try_get(0)?;
    if !locked {
        return Err(StoreError::Unavailable(format!(
            "a rebuild of {name} is already running"
        )));
    }
    // The connection moves into each transaction and back; one a failed
    // transaction closed released the lock with its session.
    let mut slot = Some(client);
    let result = Rebuild::new(events, projection, progress)
        .run(&mut slot)
        .await;
    let Some(client) = slot else {
        return result;
    };
    // Released whatever happened: the connection goes back to the pool.
    let unlocked = client
        .execute(
            "SELECT pg_advisory_unlock($1, hashtext($2))",
            &[&REBUILD_LOCK, &name],
        )
        .await;
    let rebuilt = result?;
    unlocked?;
    Ok(rebuilt)
}

/// The rebuild's connection, between its transactions.
fn connection(slot: &Option<Object>) -> Result<&Client, StoreError> {
    match slot {
        Some(client) => Ok(client),
        None => Err(StoreError::Unavailable(
            "the rebuild's connection was lost".into(),
        )),
    }
}

struct Rebuild<'a> {
    events: &'a dyn EventStore,
    projection: &'a dyn Projection,
    progress: &'a (dyn Fn(Progress) + Sync),
    copies: Tables,
    started: Instant,
    position: i64,
    applied: u64,
}

impl<'a> Rebuild<'a> {
    fn new(
        events: &'a dyn EventStore,
        projection: &'a dyn Projection,
        progress: &'a (dyn Fn(Progress) + Sync),
    ) -> Self {
        Self {
            events,
            projection,
            progress,
            copies: Tables::rebuild(),
            started: Instant::now(),
            position: 0,
            applied: 0,
        }
    }

    async fn run(mut self, slot: &mut Option<Object>) -> Result<Rebuilt, StoreError> {
        self.create_copies(connection(slot)?).await?;
        self.replay(slot).await?;
        self.complete_copies(connection(slot)?).await?;
        let mut tx = self.begin(slot).await?;
        tx.lock_checkpoint(self.projection.name()).await?;
        // The live worker now waits: whatever it has not applied, the copies
        // get here, and it resumes from the checkpoint set below.
        while self.apply_next(&mut tx).await? > 0 {}
        swap_tables(tx.client()?, self.projection, &self.copies).await?;
        tx.set_checkpoint(self.projection.name(), self.position)
            .await?;
        *slot = Some(tx.commit_keep().await?);
        Ok(Rebuilt {
            position: self.position,
            applied: self.applied,
            elapsed: self.started.elapsed(),
        })
    }

    /// Empty copies of the live tables, replacing any a failed rebuild left.
    async fn create_copies(&self, client: &Client) -> Result<(), StoreError> {
        let insert_only = self.projection.insert_only();
        for base in self.projection.tables() {
            let copy = self.copies.name(base);
            indexes::create_copy(client, base, &copy, insert_only.contains(base)).await?;
        }
        Ok(())
    }

    /// The copies' other indexes, built over the filled tables.
    async fn complete_copies(&self, client: &Client) -> Result<(), StoreError> {
        for base in self.projection.tables() {
            indexes::complete_copy(client, base, &self.copies.name(base)).await?;
        }
        Ok(())
    }

    /// A transaction writing to the copies, on the rebuild's connection.
    async fn begin(&self, slot: &mut Option<Object>) -> Result<PgReadTx, StoreError> {
        let client = slot
            .take()
            .ok_or_else(|| StoreError::Unavailable("the rebuild's connection was lost".into()))?;
        PgReadTx::begin(client, self.copies.clone()).await
    }

    /// Replays the log into the copies, a batch per transaction, to the head.
    async fn replay(&mut self, slot: &mut Option<Object>) -> Result<(), StoreError> {
        let mut batch = self.events.read_all(self.position, REBUILD_BATCH).await?;
        while let Some(last) = batch.last().map(|e| e.position) {
            // The next batch is read (on another connection) while this one
            // is applied: decoding rows and writing rows overlap.
            let mut tx = self.begin(slot).await?;
            // Nothing waits on these commits being durable: after a crash
            // the copies are dropped and the rebuild starts over. The swap's
            // commit stays synchronous.
            tx.client()?
                .batch_execute("SET LOCAL synchronous_commit = off")
                .await?;
            let (next, applied) = tokio::join!(
                self.events.read_all(last, REBUILD_BATCH),
                apply(&mut tx, self.projection, &batch),
            );
            applied?;
            *slot = Some(tx.commit_keep().await?);
            self.advance(&batch);
            self.report().await?;
            batch = next?;
        }
        Ok(())
    }

    /// Applies the next batch of the log to the copies; returns its size.
    async fn apply_next(&mut self, tx: &mut PgReadTx) -> Result<usize, StoreError> {
        let batch = self.events.read_all(self.position, REBUILD_BATCH).await?;
        apply(tx, self.projection, &batch).await?;
        self.advance(&batch);
        Ok(batch.len())
    }

    fn advance(&mut self, batch: &[StoredEvent]) {
        if let Some(last) = batch.last() {
            self.position = last.position;
            self.applied += batch.len() as u64;
        }
    }

    async fn report(&self) -> Result<(), StoreError> {
        let head = self.events.head_position().await?.max(self.position);
        let seconds = self.started.elapsed().as_secs_f64();
        (self.progress)(Progress {
            applied: self.applied,
            position: self.position,
            head,
            rate: if seconds > 0.0 {
                self.applied as f64 / seconds
            } else {
                0.0
            },
        });
        Ok(())
    }
}

/// Applies a batch read from the log to the copies `tx` writes to.
async fn apply(
    tx: &mut PgReadTx,
    projection: &dyn Projection,
    batch: &[StoredEvent],
) -> Result<(), StoreError> {
    let events: Vec<&StoredEvent> = batch.iter().collect();
    projection.apply(tx, &events).await
}

/// Replaces each live table by its copy, inside the caller's transaction,
/// its indexes renamed to the live ones' names.
async fn swap_tables(
    tx: &Client,
    projection: &dyn Projection,
    copies: &Tables,
) -> Result<(), StoreError> {
    // All at once, in the projection's order, rather than one by one as the
    // drops below would: fewer chances to interleave with a reader.
    let live = projection.tables().join(", ");
    tx.batch_execute(&format!("LOCK TABLE {live} IN ACCESS EXCLUSIVE MODE"))
        .await?;
    for base in projection.tables() {
        let copy = copies.name(base);
        let renames = indexes::index_renames(tx, base, &copy).await?;
        tx.batch_execute(&format!(
            "DROP TABLE {base}; ALTER TABLE {copy} RENAME TO {base};"
        ))
        .await?;
        for (live_name, copy_name) in renames {
            tx.batch_execute(&format!(
                "ALTER INDEX \"{copy_name}\" RENAME TO \"{live_name}\""
            ))
            .await?;
        }
    }
    Ok(())
}
