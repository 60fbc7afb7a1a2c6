//! Group commit for ticket appends.
//!
//! Every appending transaction holds the head row from taking its positions
//! until it has committed (see [`super::append`]), so commits are serialised
//! and each waits for its own WAL flush: with one append per transaction the
//! whole system would manage one append per flush. So ticket appends are
//! queued, and one committer task takes whatever is queued and writes it in
//! one transaction, with a fixed number of set-based statements in two
//! pipelined round trips (`BEGIN` and the locks; the writes and `COMMIT`).
//!
//! One committer per process rather than several: a second one's batch
//! could only take its locks once the first had committed (every batch locks
//! its projects' rows), so it bought little overlap and halved the batches;
//! with one, PostgreSQL spent about a sixth less per append and commands ran
//! about 8% faster.
//!
//! Each append keeps its own outcome: one that lost its compare-and-set (or
//! was decided against a project that has moved on) gets its error while the
//! others in the batch commit. A batch that fails as a whole fails every
//! append in it, so no caller ever sees a false success. Two appends to one
//! stream never share a batch: the second waits for the next one, so it sees
//! the first's outcome as if they had run one after the other.
//!
//! Committers of several instances run concurrently and keep the lock order
//! of [`super::append`]: their streams sorted by id, then their projects
//! sorted by id, then the head row.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::Range;
use std::time::Instant;

use deadpool_postgres::{Object, Pool};
use ticketflow_domain::ticket::{Ticket, TicketEvent, TicketPayload};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Statement;
use uuid::Uuid;

use super::append::{
    notify_params, Rows, Snapshots, Written, LOCK_HEAD, NOTIFY_HEAD, WRITE_EVENTS, WRITE_SNAPSHOTS,
};
use crate::event_store::{Append, Committed};
use crate::stream::apply_all;
use crate::StoreError;

/// Appends per transaction, bounding its size and its locks.
const MAX_BATCH: usize = 256;
/// Appends waiting for a committer before senders are made to wait.
const QUEUE_DEPTH: usize = 4096;
/// Tries of a batch that lost a race it could not have avoided (deadlock,
/// two new streams with one id).
const MAX_TRIES: usize = 3;

/// Locks the batch's existing streams in id order (rows are locked after
/// sorting), reading their versions for the compare-and-set.
const LOCK_STREAMS: &str = "SELECT stream_id, version FROM streams
    WHERE stream_id = ANY($1) ORDER BY stream_id FOR UPDATE";
/// Locks the batch's projects in id order, reading their counters.
const LOCK_PROJECTS: &str = "SELECT project_id, key, last_seq, last_ticket_number FROM projects
    WHERE project_id = ANY($1) ORDER BY project_id FOR NO KEY UPDATE";
/// The projects' versions, read after their rows are locked: a membership
/// change locks the row too, so the versions read here hold until commit.
const PROJECT_VERSIONS: &str = "SELECT stream_id, version FROM streams WHERE stream_id = ANY($1)";
/// New streams start at version 0; [`Rows::write`] moves them on.
const NEW_STREAMS: &str = "INSERT INTO streams (stream_id, stream_type, project_id, version,
        last_position)
    SELECT id, 'ticket', pid, 0, 0 FROM UNNEST($1::uuid[], $2::uuid[]) AS u(id, pid)";
const COUNTERS: &str = "UPDATE projects p SET last_seq = u.s, last_ticket_number = u.n
    FROM UNNEST($1::uuid[], $2::bigint[], $3::bigint[]) AS u(id, s, n)
    WHERE p.project_id = u.id AND p.project_id = ANY($1)";

type Outcome = Result<Committed<Ticket>, StoreError>;

/// One queued append and where its outcome goes.
struct Queued {
    append: Append<Ticket, TicketEvent>,
    /// The project version the events were decided against, if they depend
    /// on it.
    project_version: Option<u64>,
    reply: oneshot::Sender<Outcome>,
}

/// The entrance to the committer.
pub(super) struct Committer {
    queue: mpsc::Sender<Queued>,
}

impl Committer {
    /// Spawns the committer task; it ends when the committer is dropped.
    pub(super) fn start(pool: Pool) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE_DEPTH);
        let deferred = VecDeque::new();
        tokio::spawn(run_committer(Queue { rx, deferred }, pool));
        Self { queue }
    }

    pub(super) async fn append(
        &self,
        append: Append<Ticket, TicketEvent>,
        project_version: Option<u64>,
    ) -> Outcome {
        let (reply, outcome) = oneshot::channel();
        let queued = Queued {
            append,
            project_version,
            reply,
        };
        self.queue.send(queued).await.map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the ticket committer has stopped".into())
}

/// Appends waiting for a batch.
struct Queue {
    rx: mpsc::Receiver<Queued>,
    /// Appends to a stream that already had one in the batch being formed.
    deferred: VecDeque<Queued>,
}

impl Queue {
    /// Waits for at least one append, then takes whatever else is waiting;
    /// `None` once the committer is gone.
    async fn next_batch(&mut self) -> Option<Vec<Queued>> {
        let mut batch = Batch::default();
        for queued in std::mem::take(&mut self.deferred) {
            batch.offer(queued, &mut self.deferred);
        }
        if batch.appends.is_empty() {
            let queued = self.rx.recv().await?;
            batch.offer(queued, &mut self.deferred);
        }
        while batch.appends.len() < MAX_BATCH {
            let Ok(queued) = self.rx.try_recv() else {
                break;
            };
            batch.offer(queued, &mut self.deferred);
        }
        Some(batch.appends)
    }
}

#[derive(Default)]
struct Batch {
    appends: Vec<Queued>,
    streams: HashSet<Uuid>,
}

impl Batch {
    /// Takes `queued` unless the batch is full or already appends to its
    /// stream. An append whose caller stopped waiting (it was told the
    /// database is unavailable: see `PgStore::bounded`) is dropped, not
    /// committed behind its back once the database answers again.
    fn offer(&mut self, queued: Queued, later: &mut VecDeque<Queued>) {
        if queued.reply.is_closed() {
            return;
        }
        if self.appends.len() < MAX_BATCH && self.streams.insert(queued.append.stream_id) {
            self.appends.push(queued);
        } else {
            later.push_back(queued);
        }
    }
}

async fn run_committer(mut queue: Queue, pool: Pool) {
    while let Some(batch) = queue.next_batch().await {
        commit(&pool, batch).await;
    }
}

/// Why a batch failed as a whole.
enum Failed {
    /// A race no lock order prevents; nothing was committed, try again.
    Retry(tokio_postgres::Error),
    Fatal(StoreError),
}

impl From<tokio_postgres::Error> for Failed {
    fn from(e: tokio_postgres::Error) -> Self {
        let retry = e.as_db_error().is_some_and(|db| {
            let code = db.code();
            *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
                || (*code == SqlState::UNIQUE_VIOLATION && db.constraint() == Some("streams_pkey"))
        });
        if retry {
            Self::Retry(e)
        } else {
            Self::Fatal(e.into())
        }
    }
}

impl From<StoreError> for Failed {
    fn from(e: StoreError) -> Self {
        Self::Fatal(e)
    }
}

async fn commit(pool: &Pool, batch: Vec<Queued>) {
    let started = Instant::now();
    let mut tries = 1;
    let outcome = loop {
        match try_commit(pool, &batch).await {
            Err(Failed::Retry(e)) if tries < MAX_TRIES => {
                tracing::debug!(error = %e, tries, appends = batch.len(), "retrying a ticket batch");
                tries += 1;
            }
            Err(Failed::Retry(e)) => break Err(StoreError::from(e)),
            Err(Failed::Fatal(e)) => break Err(e),
            Ok(outcomes) => break Ok(outcomes),
        }
    };
    crate::metrics::group_commit(batch.len(), started.elapsed());
    match outcome {
        Ok(outcomes) => {
            for (queued, outcome) in batch.into_iter().zip(outcomes) {
                // A caller that gave up waiting needs no answer.
                let _ = queued.reply.send(outcome);
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, appends = batch.len(), "a ticket batch failed");
            for queued in batch {
                let _ = queued.reply.send(Err(e.clone()));
            }
        }
    }
}

async fn try_commit(pool: &Pool, batch: &[Queued]) -> Result<Vec<Outcome>, Failed> {
    let connection = ByHand(Some(pool.get().await.map_err(StoreError::from)?));
    let client = connection.client();
    let statements = Statements::prepare(client).await?;
    let mut plan = Plan::new(lock(client, &statements, batch).await?);
    let planned: Vec<_> = batch.iter().map(|queued| plan.add(queued)).collect();
    if plan.rows.len() == 0 {
        // Nothing to write: every append conflicted or was empty.
        client.batch_execute("ROLLBACK").await?;
        connection.release();
        return Ok(planned.into_iter().map(|p| p.map(Planned::empty)).collect());
    }
    let written = plan.write_and_commit(client, &statements).await?;
    connection.release();
    planned
        .into_iter()
        .map(|p| p.and_then(|p| p.committed(&plan.rows, &written)))
        .map(Ok)
        .collect()
}

/// A connection whose transaction is driven by hand rather than through a
/// `Transaction` guard, so that `BEGIN` and `COMMIT` can be pipelined with
/// the statements around them: two round trips per batch instead of five,
/// and the project rows every batch locks (step 2) are held for one of them
/// rather than three. Back to the pool once [`ByHand::release`]d, outside any
/// transaction; otherwise (an error on the way, or the task dropped) the
/// connection is closed, which ends whatever transaction it had open.
struct ByHand(Option<Object>);

impl ByHand {
    fn client(&self) -> &Object {
        self.0
            .as_ref()
            .expect("a connection until released or dropped")
    }

    fn release(mut self) {
        self.0.take();
    }
}

impl Drop for ByHand {
    fn drop(&mut self) {
        if let Some(connection) = self.0.take() {
            drop(Object::take(connection));
        }
    }
}

/// Every statement of a batch, prepared before any is sent (once per
/// connection: they are cached). Pipelining relies on it: a statement is
/// sent when its future is first polled only if it needs no preparing
/// first, and `COMMIT` must reach the server after every write.
struct Statements {
    lock_streams: Statement,
    lock_projects: Statement,
    project_versions: Statement,
    new_streams: Statement,
    counters: Statement,
    snapshots: Statement,
    lock_head: Statement,
    write_events: Statement,
    notify: Statement,
}

impl Statements {
    async fn prepare(client: &Object) -> Result<Self, tokio_postgres::Error> {
        let (lock_streams, lock_projects, project_versions, new_streams) = futures::try_join!(
            client.prepare_cached(LOCK_STREAMS),
            client.prepare_cached(LOCK_PROJECTS),
            client.prepare_cached(PROJECT_VERSIONS),
            client.prepare_cached(NEW_STREAMS),
        )?;
        let (counters, snapshots, lock_head, write_events, notify) = futures::try_join!(
            client.prepare_cached(COUNTERS),
            client.prepare_cached(WRITE_SNAPSHOTS),
            client.prepare_cached(LOCK_HEAD),
            client.prepare_cached(WRITE_EVENTS),
            client.prepare_cached(NOTIFY_HEAD),
        )?;
        Ok(Self {
            lock_streams,
            lock_projects,
            project_versions,
            new_streams,
            counters,
            snapshots,
            lock_head,
            write_events,
            notify,
        })
    }
}

/// What the batch's locks protect, as read when they were taken.
struct Locked {
    versions: HashMap<Uuid, i64>,
    projects: HashMap<Uuid, Counters>,
    project_versions: HashMap<Uuid, i64>,
}

/// Begins the transaction and takes the batch's locks, in one round trip.
async fn lock(
    client: &Object,
    statements: &Statements,
    batch: &[Queued],
) -> Result<Locked, Failed> {
    let stream_ids: Vec<Uuid> = batch.iter().map(|q| q.append.stream_id).collect();
    let mut project_ids: Vec<Uuid> = batch.iter().map(|q| q.append.project_id).collect();
    project_ids.sort_unstable();
    project_ids.dedup();
    // Pipelined, and run in this order: the versions are read once the
    // project rows are locked.
    let (by_stream, by_project): ([&(dyn ToSql + Sync); 1], [&(dyn ToSql + Sync); 1]) =
        ([&stream_ids], [&project_ids]);
    let ((), streams, projects, versions) = futures::try_join!(
        client.batch_execute("BEGIN"),
        client.query(&statements.lock_streams, &by_stream),
        client.query(&statements.lock_projects, &by_project),
        client.query(&statements.project_versions, &by_project),
    )?;
    let projects = projects
        .iter()
        .map(|r| {
            let counters = Counters {
                key: r.try_get(1)?,
                last_seq: r.try_get(2)?,
                last_number: r.try_get(3)?,
                moved: false,
            };
            Ok((r.try_get(0)?, counters))
        })
        .collect::<Result<_, tokio_postgres::Error>>()?;
    Ok(Locked {
        versions: versions_of(&streams)?,
        projects,
        project_versions: versions_of(&versions)?,
    })
}

fn versions_of(rows: &[tokio_postgres::Row]) -> Result<HashMap<Uuid, i64>, tokio_postgres::Error> {
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// A project's counters, moved on in memory by the batch's appends.
struct Counters {
    key: String,
    last_seq: i64,
    last_number: i64,
    moved: bool,
}

impl Counters {
    /// Takes one seq per event and one number per created ticket; the row
    /// lock makes both gap-free and unique.
    fn index(&mut self, events: &mut [TicketEvent]) -> Vec<Option<i64>> {
        self.moved = true;
        events
            .iter_mut()
            .map(|event| {
                if matches!(event.payload, TicketPayload::TicketCreated { .. }) {
                    self.last_number += 1;
                    event
                        .payload
                        .assign_number(&self.key, self.last_number as u64);
                }
                self.last_seq += 1;
                Some(self.last_seq)
            })
            .collect()
    }
}

/// The writes of one batch, gathered before any is made.
struct Plan {
    locked: Locked,
    new_streams: (Vec<Uuid>, Vec<Uuid>),
    snapshots: Snapshots,
    rows: Rows,
}

/// An append that will commit with the batch.
struct Planned {
    state: Ticket,
    events: Range<usize>,
}

impl Planned {
    fn empty(self) -> Committed<Ticket> {
        Committed {
            state: self.state,
            events: Vec::new(),
        }
    }

    fn committed(self, rows: &Rows, written: &Written) -> Outcome {
        Ok(Committed {
            state: self.state,
            events: rows.stored(written, self.events),
        })
    }
}

impl Plan {
    fn new(locked: Locked) -> Self {
        Self {
            locked,
            new_streams: Default::default(),
            snapshots: Snapshots::default(),
            rows: Rows::default(),
        }
    }

    /// Checks one append against the locked state and adds its writes.
    fn add(&mut self, queued: &Queued) -> Result<Planned, StoreError> {
        // Its caller gave up while the locks were awaited (a database that
        // stopped answering): it was told the outcome is unknown, so it must
        // not commit now that the database answers again.
        if queued.reply.is_closed() {
            return Err(stopped());
        }
        let append = &queued.append;
        let expected = append.before.version as i64;
        let current = self.locked.versions.get(&append.stream_id).copied();
        if current.unwrap_or(0) != expected {
            return Err(StoreError::VersionConflict {
                current: current.unwrap_or(0) as u64,
            });
        }
        if let Some(decided_on) = queued.project_version {
            let now = self.locked.project_versions.get(&append.project_id);
            let now = now.copied().unwrap_or(0) as u64;
            if now != decided_on {
                return Err(StoreError::ProjectMoved { current: now });
            }
        }
        if append.events.is_empty() {
            return Ok(Planned {
                state: append.before.state.clone(),
                events: 0..0,
            });
        }
        let counters = self
            .locked
            .projects
            .get_mut(&append.project_id)
            .ok_or_else(|| {
                StoreError::Corrupt(format!("project {} has no index row", append.project_id))
            })?;
        let mut events = append.events.clone();
        let seqs = counters.index(&mut events);
        let new_version = expected + events.len() as i64;
        let state = apply_all(append.before.state.clone(), &events);
        self.snapshots
            .push_if_due(append.stream_id, expected, new_version, &state)?;
        if expected == 0 {
            self.new_streams.0.push(append.stream_id);
            self.new_streams.1.push(append.project_id);
        }
        let start = self.rows.len();
        self.rows.push::<Ticket>(
            append.stream_id,
            append.project_id,
            expected,
            &events,
            &seqs,
            &append.metadata,
        )?;
        Ok(Planned {
            state,
            events: start..self.rows.len(),
        })
    }

    /// Writes everything and commits, in one round trip: new streams,
    /// counters and snapshots, then the events (taking the head row, step 3)
    /// and the watchers' notification. If any statement fails, the ones
    /// after it fail too and `COMMIT` rolls back.
    async fn write_and_commit(
        &self,
        client: &Object,
        statements: &Statements,
    ) -> Result<Written, Failed> {
        let moved = self.locked.projects.iter().filter(|(_, c)| c.moved);
        let ids: Vec<Uuid> = moved.clone().map(|(id, _)| *id).collect();
        let seqs: Vec<i64> = moved.clone().map(|(_, c)| c.last_seq).collect();
        let numbers: Vec<i64> = moved.map(|(_, c)| c.last_number).collect();
        let new_params: [&(dyn ToSql + Sync); 2] = [&self.new_streams.0, &self.new_streams.1];
        let counter_params: [&(dyn ToSql + Sync); 3] = [&ids, &seqs, &numbers];
        let (snapshots, rows, notify) =
            (self.snapshots.params(), self.rows.params(), notify_params());
        // Sent in this order, each on its first poll; the first error is the
        // one reported (responses come back in order).
        let (_, _, _, _, row, _, ()) = futures::try_join!(
            client.execute(&statements.new_streams, &new_params),
            client.execute(&statements.counters, &counter_params),
            client.execute(&statements.snapshots, &snapshots),
            client.execute(&statements.lock_head, &[]),
            client.query_one(&statements.write_events, &rows),
            client.execute(&statements.notify, &notify),
            client.batch_execute("COMMIT"),
        )?;
        Ok(Written::from_row(&row)?)
    }
}
