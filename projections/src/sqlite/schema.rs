//! Opening `reads.db` connections, and its schema, versioned by
//! `PRAGMA user_version`: migration N (embedded SQL) runs when the file's
//! version is below N, in one transaction with the version's move.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use ticketflow_store::StoreError;

use super::db;

/// The migrations, in order; the file's `user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/sqlite/reads/V1__read_models.sql"),
    include_str!("../../../migrations/sqlite/reads/V2__no_message_positions_index.sql"),
    include_str!("../../../migrations/sqlite/reads/V3__general_notifications.sql"),
];

/// How long a statement waits for another connection's lock (another
/// process's writer, or a checkpoint) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to `path` (created if missing), set up for the read models.
///
/// WAL lets the readers read while a batch writes. `synchronous = NORMAL`
/// skips the fsync per commit: a crash (of the machine, not the process) may
/// lose the last batches, and their checkpoint with them, since both are in
/// the same transactions; the projections then apply those events again.
pub(super) fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

/// Brings the schema up to date; refuses a file from a newer version.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(db)?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::Corrupt(format!(
            "the read models' file is at schema version {version}; this build knows up to {known}"
        )));
    }
    for (sql, number) in MIGRATIONS.iter().zip(1..).skip(version as usize) {
        tx.execute_batch(sql).map_err(db)?;
        tx.pragma_update(None, "user_version", number).map_err(db)?;
    }
    tx.commit().map_err(db)
}
