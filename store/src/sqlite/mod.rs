//! The SQLite implementation of the store traits, for the embedded mode: the
//! event log, accounts, refresh tokens and idempotency records in one file
//! (`<data-dir>/events.db`) that one process owns.
//!
//! The model: SQLite has one writer, so the store has one writing connection
//! on a thread of its own ([`writer`]), fed by a channel. It takes whatever
//! writes are queued and commits them in one transaction, each in a savepoint
//! of its own (group commit: one fsync for the lot, yet each write keeps its
//! outcome). Reads run on tokio's blocking threads over a few read-only
//! connections ([`readers`]); in WAL mode they never wait for the writer.
//!
//! Because one thread writes and commits a whole batch at once, positions,
//! stream versions, channel seqs and ticket numbers are taken inside that
//! thread's transaction and are gap-free without any locking, and readers see
//! a batch's positions all at once: no late commit behind a cursor.

mod accounts;
mod append;
mod board;
mod event_store;
mod events;
mod idempotency;
mod load;
mod migrate;
mod readers;
mod writer;

pub use readers::{Open, Readers};

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags};

use crate::watch::{Watch, WatchFeed};
use crate::StoreError;

/// How long a connection waits for a lock held by another connection before
/// failing: only at open (a previous store on the same file still closing)
/// should there be any.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The event log and its companions in one SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    /// The one writing connection, on its own thread.
    writer: Arc<writer::Writer>,
    /// Read-only connections for the blocking pool.
    readers: Arc<Readers>,
    /// Raised by the writer after each commit, and by the projectors'
    /// [`SqliteStore::announce_checkpoint`].
    feed: WatchFeed,
}

impl SqliteStore {
    /// Opens (creating if need be) and migrates the file at `path`. The
    /// directory must exist; the caller is expected to hold the data
    /// directory's lock, as SQLite's own locking would let a second process
    /// in and the watch would not hear of its commits. Blocks while it
    /// migrates: call it at startup, not from a busy runtime.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let context = |e: rusqlite::Error| {
            StoreError::Unavailable(format!("cannot open {}: {e}", path.display()))
        };
        let mut conn = Connection::open(path).map_err(context)?;
        configure_writer(&conn).map_err(context)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(context)?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Without WAL, readers would block the writer and vice versa.
            return Err(StoreError::Unavailable(format!(
                "{} cannot use WAL mode (journal_mode is {mode})",
                path.display()
            )));
        }
        migrate::migrate(&mut conn)?;
        let head = events::head_position(&conn)?;
        let (feed, _) = WatchFeed::new(head);
        let writer = writer::Writer::start(conn, feed.clone())?;
        Ok(Self {
            writer: Arc::new(writer),
            readers: Arc::new(Readers::new(path, open_reader)),
            feed,
        })
    }

    /// The log's head and the projections' checkpoints. The head is raised
    /// right after each commit by the writer: no polling, since no other
    /// process writes the file.
    pub fn watch(&self) -> Watch {
        self.feed.subscribe()
    }

    /// Tells every watcher that projection `name` has applied `position`
    /// (on PostgreSQL a projection batch's own transaction does, with
    /// [`crate::pg::NOTIFY_CHECKPOINT`]). Async and fallible like the
    /// projection workers' other announcements, though here it cannot fail.
    pub async fn announce_checkpoint(&self, name: &str, position: i64) -> Result<(), StoreError> {
        self.feed.checkpoint(name, position);
        Ok(())
    }
}

/// The writing connection: `synchronous=FULL` so a commit reported to a
/// caller is on disk (in WAL mode NORMAL could lose the last commits on power
/// loss); the caller then switches the file to WAL.
fn configure_writer(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// A reading connection; `query_only` guards against a write slipping past
/// the writer thread (it would break the watch and the group commit).
fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    // Read-write but never creating: the writer has made the file already.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "query_only", "ON")?;
    Ok(conn)
}

/// Timestamps are stored as microseconds since the epoch: PostgreSQL's
/// precision, so comparisons ("as of", "older than") come out alike.
fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(m: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(m)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {m} is out of range")))
}

/// JSON columns hold text, whatever the value (rusqlite would store a JSON
/// null as SQL NULL and a number as a number).
fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, StoreError> {
    Ok(serde_json::to_string(value)?)
}

/// Maps a unique violation on `column` (as SQLite names it, `table.column`)
/// to [`StoreError::Taken`].
fn taken(e: rusqlite::Error, column: &str, what: &'static str) -> StoreError {
    let is_it = matches!(
        &e,
        rusqlite::Error::SqliteFailure(f, Some(message))
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                && message.ends_with(column)
    );
    if is_it {
        StoreError::Taken(what)
    } else {
        e.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The event log is durable once a caller hears it is stored: the file
    /// is in WAL mode and the writer syncs every commit.
    #[test]
    fn the_writer_syncs_every_commit_in_wal_mode() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("events.db");
        let store = SqliteStore::open(&path).expect("open");
        let conn = Connection::open(&path).expect("second connection");
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("journal mode");
        assert_eq!(mode, "wal");
        configure_writer(&conn).expect("configure");
        let synchronous: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .expect("synchronous");
        assert_eq!(synchronous, 2, "FULL");
        drop(store);
    }

    #[test]
    fn opening_a_missing_directory_says_where() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("missing").join("events.db");
        match SqliteStore::open(&path) {
            Err(StoreError::Unavailable(message)) => assert!(message.contains("missing")),
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("opened a file in a missing directory"),
        }
    }
}
