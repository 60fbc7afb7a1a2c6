//! Rebuilding a projection from the whole log, without readers ever seeing a
//! half-built model and without stopping the live worker for long.
//!
//! 1. Fresh copies of the projection's tables (`<table>_rebuild`, `LIKE ...`)
//!    are filled by replaying the log in batches, one transaction each, while
//!    the live tables keep serving and the live worker keeps applying. Their
//!    indexes are built once they are filled ([`indexes`]).
//! 2. One transaction then locks the projection's checkpoint row
//!    (the lock every live batch takes first, so the worker waits), applies the
//!    events that arrived meanwhile to the copies, drops the live tables, puts
//!    the copies in their place with the live tables' index and constraint
//!    names, and sets the checkpoint to what the copies hold. Readers see the
//!    old model until the commit and the new one after it.
//!
//! Only one rebuild of a projection runs at a time (a session advisory lock).
//! Several projections rebuilt together ([`rebuild_all`]) share step 1's
//! reading of the log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::{Object, Pool};
use futures::future::{join_all, try_join_all};
use ticketflow_store::{EventStore, StoreError, StoredEvent};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::Client;

mod indexes;
mod states;

use crate::{BatchTx, Projection, Tables};
use states::{States, StatesTx};

/// How much a rebuild takes on at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Events read and applied per transaction while replaying: large, since
    /// a batch costs a few statements whatever its size.
    pub batch: i64,
    /// Ticket states kept in memory between batches ([`states`]) before they
    /// are written to the copies: about a kilobyte each.
    pub kept_states: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            batch: 10_000,
            kept_states: 100_000,
        }
    }
}

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
    pub phases: Phases,
}

/// Where a rebuild's time went, phase by phase (they add up to its
/// elapsed time, give or take the lock and the copies' creation).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Phases {
    /// Replaying the log into the copies, from the start of the rebuild.
    pub replay: Duration,
    /// Writing out the ticket states kept in memory.
    pub states: Duration,
    /// Building the copies' other indexes.
    pub indexes: Duration,
    /// Catching up and swapping the copies in (one transaction).
    pub swap: Duration,
}

/// Rebuilds `projection` from the whole log and swaps the result in.
///
/// Holds one connection of `pool` throughout and reads the log through
/// `events`, which needs connections of its own (so a pool of one would wait
/// on itself). Fails at once if a rebuild of the same projection is running.
pub async fn rebuild(
    pool: &Pool,
    events: &dyn EventStore,
    projection: Arc<dyn Projection>,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Rebuilt, StoreError> {
    let report = |_: &str, p: Progress| progress(p);
    let limits = Limits::default();
    let mut rebuilt = rebuild_all(pool, events, &[projection], &report, limits).await?;
    rebuilt
        .pop()
        .ok_or_else(|| StoreError::Corrupt("a rebuild returned nothing".into()))
}

/// Rebuilds each of `projections` from the whole log, reading it once: each
/// projection applies every batch read to its copies in a task of its own,
/// on a connection of its own (one of `pool`'s each, held throughout), so
/// decoding happens once and both the rows' building and PostgreSQL have
/// work for every core. Each projection then catches up and swaps its
/// copies in on its own.
/// `progress` hears each projection's name and progress after every batch.
/// Fails at once if a rebuild of any of them is running.
pub async fn rebuild_all(
    pool: &Pool,
    events: &dyn EventStore,
    projections: &[Arc<dyn Projection>],
    progress: &(dyn Fn(&str, Progress) + Sync),
    limits: Limits,
) -> Result<Vec<Rebuilt>, StoreError> {
    let mut rebuilds = Vec::with_capacity(projections.len());
    for projection in projections {
        let locked = Rebuild::lock(pool, events, projection.clone(), progress, limits).await;
        match locked {
            Ok(rebuild) => rebuilds.push(rebuild),
            Err(e) => {
                unlock_all(rebuilds).await?;
                return Err(e);
            }
        }
    }
    let result = run_all(&mut rebuilds).await;
    // Released whatever happened: the connections go back to the pool.
    let unlocked = unlock_all(rebuilds).await;
    let rebuilt = result?;
    unlocked?;
    Ok(rebuilt)
}

async fn run_all(rebuilds: &mut [Rebuild<'_>]) -> Result<Vec<Rebuilt>, StoreError> {
    try_join_all(rebuilds.iter_mut().map(Rebuild::create_copies)).await?;
    replay_all(rebuilds).await?;
    try_join_all(rebuilds.iter_mut().map(Rebuild::write_out_states)).await?;
    try_join_all(rebuilds.iter_mut().map(Rebuild::swap_in)).await
}

/// Batches read ahead of the slowest projection: enough that one slower on
/// a batch does not hold the others back, few enough to bound memory.
const READ_AHEAD: usize = 2;

/// What a replay task says after each batch: the rebuild's index, the
/// batch's size and its last position.
type BatchDone = (usize, usize, i64);

/// A replay task, handing back the rebuild's connection and states kept.
type ReplayTask = JoinHandle<Result<(Object, States), StoreError>>;

/// Replays the log into every rebuild's copies, to the head. The log is
/// read once, a batch at a time, and each projection applies the batches in
/// a task of its own, one transaction each, as fast as it can: reading,
/// building rows and PostgreSQL's writing overlap, and a projection slower
/// on one batch holds the others back only once it is [`READ_AHEAD`]
/// batches behind.
async fn replay_all(rebuilds: &mut [Rebuild<'_>]) -> Result<(), StoreError> {
    let Some((events, limits)) = rebuilds.first().map(|r| (r.events, r.limits)) else {
        return Ok(());
    };
    let (applied, mut reports) = mpsc::unbounded_channel();
    let (mut feeds, mut tasks) = (Vec::new(), Vec::new());
    for (index, rebuild) in rebuilds.iter_mut().enumerate() {
        let (feed, batches) = mpsc::channel(READ_AHEAD);
        tasks.push(rebuild.spawn_replay(index, batches, applied.clone())?);
        feeds.push(feed);
    }
    drop(applied);
    let fed = feed(events, limits.batch, &feeds, rebuilds, &mut reports).await;
    // The tasks end once their batches are applied; every one is awaited,
    // failed or not, so each connection (and the lock its session holds)
    // comes back to be released.
    drop(feeds);
    let mut failed = fed.err();
    for (rebuild, task) in rebuilds.iter_mut().zip(join_all(tasks).await) {
        match task {
            Ok(Ok(back)) => {
                rebuild.put_back(back);
                rebuild.phases.replay = rebuild.started.elapsed();
            }
            Ok(Err(e)) => failed = Some(e),
            Err(e) => {
                failed = Some(StoreError::Unavailable(format!(
                    "a rebuild task failed: {e}"
                )))
            }
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    report_applied(rebuilds, &mut reports).await
}

/// Reads the log to its head and hands every batch to every replay task,
/// reporting what they applied meanwhile. Stops early if a task has ended
/// (it failed: its error comes with it).
async fn feed(
    events: &dyn EventStore,
    batch_size: i64,
    feeds: &[mpsc::Sender<Arc<Vec<StoredEvent>>>],
    rebuilds: &mut [Rebuild<'_>],
    reports: &mut mpsc::UnboundedReceiver<BatchDone>,
) -> Result<(), StoreError> {
    let mut after = 0;
    loop {
        let batch = Arc::new(events.read_all(after, batch_size).await?);
        let Some(last) = batch.last().map(|e| e.position) else {
            return Ok(());
        };
        after = last;
        for feed in feeds {
            if feed.send(batch.clone()).await.is_err() {
                return Ok(());
            }
        }
        report_applied(rebuilds, reports).await?;
    }
}

/// Reports every batch the replay tasks have said they applied, against
/// the log's head read once for all of them.
async fn report_applied(
    rebuilds: &mut [Rebuild<'_>],
    reports: &mut mpsc::UnboundedReceiver<BatchDone>,
) -> Result<(), StoreError> {
    let mut head = None;
    while let Ok((index, applied, position)) = reports.try_recv() {
        let Some(rebuild) = rebuilds.get_mut(index) else {
            continue;
        };
        if head.is_none() {
            head = Some(rebuild.events.head_position().await?);
        }
        rebuild.advance(applied, position);
        rebuild.report(head.unwrap_or(position));
    }
    Ok(())
}

/// Releases each rebuild's lock whose connection is still there (one a
/// failed transaction closed released it with its session).
async fn unlock_all(rebuilds: Vec<Rebuild<'_>>) -> Result<(), StoreError> {
    for rebuild in rebuilds {
        if let Some(client) = rebuild.slot {
            client
                .execute(
                    "SELECT pg_advisory_unlock($1, hashtext($2))",
                    &[&REBUILD_LOCK, &rebuild.projection.name()],
                )
                .await?;
        }
    }
    Ok(())
}

struct Rebuild<'a> {
    events: &'a dyn EventStore,
    projection: Arc<dyn Projection>,
    progress: &'a (dyn Fn(&str, Progress) + Sync),
    /// The rebuild's connection, holding its lock; it moves into each
    /// transaction and back.
    slot: Option<Object>,
    /// The ticket states kept between batches; they move with the
    /// connection.
    states: States,
    limits: Limits,
    copies: Tables,
    started: Instant,
    phases: Phases,
    position: i64,
    applied: u64,
}

impl<'a> Rebuild<'a> {
    /// Takes the projection's rebuild lock on a connection of its own.
    async fn lock(
        pool: &Pool,
        events: &'a dyn EventStore,
        projection: Arc<dyn Projection>,
        progress: &'a (dyn Fn(&str, Progress) + Sync),
        limits: Limits,
    ) -> Result<Self, StoreError> {
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
        Ok(Self {
            events,
            projection,
            progress,
            slot: Some(client),
            states: States::default(),
            limits,
            copies: Tables::rebuild(),
            started: Instant::now(),
            phases: Phases::default(),
            position: 0,
            applied: 0,
        })
    }

    /// The rebuild's connection, between its transactions.
    fn connection(&self) -> Result<&Client, StoreError> {
        match &self.slot {
            Some(client) => Ok(client),
            None => Err(StoreError::Unavailable(
                "the rebuild's connection was lost".into(),
            )),
        }
    }

    /// Builds the copies' other indexes, applies what arrived meanwhile and
    /// swaps the copies in.
    async fn swap_in(&mut self) -> Result<Rebuilt, StoreError> {
        let indexing = Instant::now();
        self.complete_copies().await?;
        self.phases.indexes = indexing.elapsed();
        let swapping = Instant::now();
        let mut tx = self.begin().await?;
        tx.lock_checkpoints(&[self.projection.name()]).await?;
        // The live worker now waits: whatever it has not applied, the copies
        // get here, and it resumes from the checkpoint set below.
        while self.apply_next(&mut tx).await? > 0 {}
        tx.write_out().await?;
        swap_tables(tx.tx().client()?, self.projection.as_ref(), &self.copies).await?;
        tx.set_checkpoints(&[(self.projection.name(), self.position)])
            .await?;
        self.put_back(tx.commit_keep(self.limits.kept_states).await?);
        self.phases.swap = swapping.elapsed();
        Ok(Rebuilt {
            position: self.position,
            applied: self.applied,
            elapsed: self.started.elapsed(),
            phases: self.phases,
        })
    }

    /// Empty copies of the live tables, replacing any a failed rebuild left.
    async fn create_copies(&mut self) -> Result<(), StoreError> {
        let insert_only = self.projection.insert_only();
        let client = self.connection()?;
        for base in self.projection.tables() {
            let copy = self.copies.name(base);
            indexes::create_copy(client, base, &copy, insert_only.contains(base)).await?;
        }
        Ok(())
    }

    /// The copies' other indexes, built over the filled tables.
    async fn complete_copies(&self) -> Result<(), StoreError> {
        let client = self.connection()?;
        for base in self.projection.tables() {
            indexes::complete_copy(client, base, &self.copies.name(base)).await?;
        }
        Ok(())
    }

    /// Writes the states the replay kept to the copies, before their
    /// indexes are built.
    async fn write_out_states(&mut self) -> Result<(), StoreError> {
        let writing = Instant::now();
        let mut tx = self.begin().await?;
        tx.write_out().await?;
        self.put_back(tx.commit_keep(self.limits.kept_states).await?);
        self.phases.states = writing.elapsed();
        Ok(())
    }

    /// A transaction writing to the copies, on the rebuild's connection,
    /// with the states kept.
    async fn begin(&mut self) -> Result<StatesTx, StoreError> {
        let (client, states) = self.take()?;
        StatesTx::begin(client, self.copies.clone(), states).await
    }

    /// The connection and the states kept, for a transaction.
    fn take(&mut self) -> Result<(Object, States), StoreError> {
        let client = self
            .slot
            .take()
            .ok_or_else(|| StoreError::Unavailable("the rebuild's connection was lost".into()))?;
        Ok((client, std::mem::take(&mut self.states)))
    }

    /// What a committed transaction hands back.
    fn put_back(&mut self, (client, states): (Object, States)) {
        self.slot = Some(client);
        self.states = states;
    }

    /// Starts the task that applies the replay's batches to the copies as
    /// they come, each in a transaction on the rebuild's connection; it
    /// says so after each and hands the connection and the states kept
    /// back once `batches` ends.
    fn spawn_replay(
        &mut self,
        index: usize,
        mut batches: mpsc::Receiver<Arc<Vec<StoredEvent>>>,
        applied: mpsc::UnboundedSender<BatchDone>,
    ) -> Result<ReplayTask, StoreError> {
        let (mut client, mut states) = self.take()?;
        let (copies, projection) = (self.copies.clone(), self.projection.clone());
        let kept_states = self.limits.kept_states;
        Ok(tokio::spawn(async move {
            while let Some(batch) = batches.recv().await {
                let mut tx = StatesTx::begin(client, copies.clone(), states).await?;
                // Nothing waits on these commits being durable: after a
                // crash the copies are dropped and the rebuild starts over.
                // The swap's commit stays synchronous.
                tx.tx()
                    .client()?
                    .batch_execute("SET LOCAL synchronous_commit = off")
                    .await?;
                apply(&mut tx, projection.as_ref(), &batch).await?;
                (client, states) = tx.commit_keep(kept_states).await?;
                if let Some(last) = batch.last() {
                    // Nobody listening any more is no reason to stop.
                    let _ = applied.send((index, batch.len(), last.position));
                }
            }
            Ok((client, states))
        }))
    }

    /// Applies the next batch of the log to the copies; returns its size.
    async fn apply_next(&mut self, tx: &mut StatesTx) -> Result<usize, StoreError> {
        let batch = self
            .events
            .read_all(self.position, self.limits.batch)
            .await?;
        apply(tx, self.projection.as_ref(), &batch).await?;
        if let Some(last) = batch.last() {
            self.advance(batch.len(), last.position);
        }
        Ok(batch.len())
    }

    fn advance(&mut self, applied: usize, position: i64) {
        self.position = position;
        self.applied += applied as u64;
    }

    /// Tells `progress` how far this rebuild is, the log's head being `head`.
    fn report(&self, head: i64) {
        let head = head.max(self.position);
        let seconds = self.started.elapsed().as_secs_f64();
        let rate = if seconds > 0.0 {
            self.applied as f64 / seconds
        } else {
            0.0
        };
        let progress = Progress {
            applied: self.applied,
            position: self.position,
            head,
            rate,
        };
        (self.progress)(self.projection.name(), progress);
    }
}

/// Applies a batch read from the log to the copies `tx` writes to. Its
/// channel messages are not published: they are history by now.
async fn apply(
    tx: &mut StatesTx,
    projection: &dyn Projection,
    batch: &[StoredEvent],
) -> Result<(), StoreError> {
    let events: Vec<&StoredEvent> = batch.iter().collect();
    projection.apply(tx, &events).await.map(drop)
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
