//! The one writing connection, on a thread of its own, with group commit.
//!
//! Writes are queued as closures. The thread waits for one, takes whatever
//! else is queued (up to [`MAX_BATCH`]), runs each in a savepoint of one
//! `BEGIN IMMEDIATE` transaction and commits once: a batch costs one fsync,
//! however many appends it holds. A write that fails is rolled back to its
//! savepoint alone, so it gets its error while the others commit; a commit
//! that fails fails every write in the batch, so no caller is ever told a
//! write is stored before it is durable.
//!
//! Writes run one after the other on one connection, so each sees everything
//! written before it, in its batch or earlier: two appends to one stream in a
//! batch behave as if committed one after the other.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use crate::watch::WatchFeed;
use crate::StoreError;

/// Writes per transaction: bounds how long one commit makes callers wait.
const MAX_BATCH: usize = 256;
/// Writes waiting for the thread before senders are made to wait.
const QUEUE_DEPTH: usize = 4096;

/// A queued write: runs on the writer's connection and says whether it wrote
/// (its savepoint is kept) and how to report its outcome once the batch's
/// commit is known.
type Job = Box<dyn FnOnce(&Connection) -> Ran + Send>;

struct Ran {
    wrote: bool,
    report: Report,
}

/// Hands a write's outcome to its caller, given the batch's commit outcome.
type Report = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// The entrance to the writer thread, which ends when this is dropped.
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    pub(super) fn start(conn: Connection, feed: WatchFeed) -> Result<Self, StoreError> {
        let (jobs, rx) = mpsc::channel(QUEUE_DEPTH);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || run(conn, rx, feed))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the writer: {e}")))?;
        Ok(Self { jobs })
    }

    /// Runs `work` on the writing connection; its result is returned once the
    /// transaction holding it has committed.
    pub(super) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, outcome) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = work(conn);
            Ran {
                wrote: result.is_ok(),
                report: Box::new(move |committed| {
                    // A caller that gave up waiting needs no answer.
                    let _ = reply.send(committed.and(result));
                }),
            }
        });
        self.jobs.send(job).await.map_err(|_| lost())?;
        outcome.await.map_err(|_| lost())?
    }
}

/// The write was dropped unanswered: the thread has stopped, or the write
/// panicked (and was rolled back).
fn lost() -> StoreError {
    StoreError::Unavailable("the SQLite writer stopped before answering".into())
}

fn run(mut conn: Connection, mut jobs: mpsc::Receiver<Job>, feed: WatchFeed) {
    while let Some(first) = jobs.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit(&mut conn, batch, &feed);
    }
}

/// Runs and commits one batch, then reports every outcome. The head is
/// raised before the callers hear: one told its event is stored finds the
/// watch at or past it.
fn commit(conn: &mut Connection, batch: Vec<Job>, feed: &WatchFeed) {
    let started = Instant::now();
    let writes = batch.len();
    let mut reports = Vec::with_capacity(writes);
    let committed = run_batch(conn, batch, &mut reports).map_err(|e| {
        tracing::warn!(error = %e, writes = reports.len(), "an SQLite batch failed");
        StoreError::from(e)
    });
    crate::metrics::group_commit(writes, started.elapsed());
    if matches!(committed, Ok(true)) {
        announce_head(conn, feed);
    }
    for report in reports {
        report(committed.clone().map(|_| ()));
    }
}

/// Runs each write in its savepoint and commits; true when any wrote. Writes
/// not reached when this fails are dropped, and their callers hear so.
fn run_batch(
    conn: &mut Connection,
    batch: Vec<Job>,
    reports: &mut Vec<Report>,
) -> rusqlite::Result<bool> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut wrote = false;
    for job in batch {
        let savepoint = tx.savepoint()?;
        // A panicking write drops its reply (its caller hears it was lost)
        // and is rolled back with its savepoint; the others go on.
        match std::panic::catch_unwind(AssertUnwindSafe(|| job(&savepoint))) {
            Ok(ran) => {
                if ran.wrote {
                    savepoint.commit()?;
                    wrote = true;
                }
                reports.push(ran.report);
            }
            Err(_) => tracing::error!("a write to the SQLite store panicked"),
        }
    }
    tx.commit()?;
    Ok(wrote)
}

/// Raises the watch to the newest position, now committed.
fn announce_head(conn: &Connection, feed: &WatchFeed) {
    match super::events::head_position(conn) {
        Ok(head) => feed.head(head),
        Err(e) => tracing::warn!(error = %e, "cannot read the log head after a commit"),
    }
}
