//! Reading connections: a few, reused, each used by one blocking task at a
//! time. In WAL mode a reader sees the last commit when its transaction (or
//! its single statement) starts, and never waits for the writer. Both SQLite
//! files (the event log's and the read models') read through this pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::Semaphore;

use crate::StoreError;

/// Reads at once, and connections kept: more would only queue on the disk.
const MAX_READERS: usize = 8;

/// How a pool opens a connection to its file.
pub type Open = fn(&Path) -> rusqlite::Result<Connection>;

/// A pool of reading connections to one SQLite file.
pub struct Readers {
    path: PathBuf,
    open: Open,
    /// Connections not in use.
    idle: Mutex<Vec<Connection>>,
    /// Bounds the blocking threads (and connections) reads occupy.
    permits: Semaphore,
}

impl Readers {
    /// A pool over the file at `path`, opening connections with `open`.
    pub fn new(path: &Path, open: Open) -> Self {
        Self {
            path: path.to_path_buf(),
            open,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(MAX_READERS),
        }
    }

    /// Runs `work` on a reading connection, on a blocking thread.
    pub async fn read<T, F>(self: &Arc<Self>, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite readers are closed".into()))?;
        let readers = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = readers.take()?;
            let result = work(&mut conn);
            readers.put_back(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("an SQLite read failed: {e}")))?
    }

    fn take(&self) -> Result<Connection, StoreError> {
        if let Some(conn) = self.lock_idle().pop() {
            return Ok(conn);
        }
        (self.open)(&self.path).map_err(|e| {
            StoreError::Unavailable(format!("cannot open {}: {e}", self.path.display()))
        })
    }

    fn put_back(&self, conn: Connection) {
        // A connection left inside a transaction would pin an old snapshot.
        // The list can be full when a read whose caller gave up (releasing
        // its permit) let another one start: the extra connection is closed.
        let mut idle = self.lock_idle();
        if conn.is_autocommit() && idle.len() < MAX_READERS {
            idle.push(conn);
        }
    }

    /// The list stays consistent even if a holder panicked: push and pop
    /// cannot be interrupted halfway.
    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
