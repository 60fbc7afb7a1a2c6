//! Schema migrations for events.db: the SQL files in the workspace's
//! `migrations/sqlite/events/`, embedded, applied in order and counted in
//! `PRAGMA user_version` (refinery does not support this rusqlite).

use rusqlite::{params, Connection, TransactionBehavior};

use super::events::query_events;
use crate::chain::{event_hash, Hash};

use crate::StoreError;

/// Every migration, oldest first; `user_version` is how many are applied.
/// Append only: an applied file never changes.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "001_event_store",
        include_str!("../../../migrations/sqlite/events/001_event_store.sql"),
    ),
    (
        "002_idempotency_committed_mark",
        include_str!("../../../migrations/sqlite/events/002_idempotency_committed_mark.sql"),
    ),
    (
        "003_revocation_indexes",
        include_str!("../../../migrations/sqlite/events/003_revocation_indexes.sql"),
    ),
    (
        "004_hash_chain",
        include_str!("../../../migrations/sqlite/events/004_hash_chain.sql"),
    ),
    (
        "005_board_snapshots",
        include_str!("../../../migrations/sqlite/events/005_board_snapshots.sql"),
    ),
];

/// The migration that adds the hash chain: the events written before it are
/// chained right after it, in its transaction.
const HASH_CHAIN: usize = 4;
/// Events read and chained at a time.
const CHAIN_BATCH: i64 = 10_000;

/// Applies the pending migrations in one transaction, so a crash midway
/// leaves the file as it was. The immediate transaction takes the write lock
/// before the version is read: two openers cannot both apply a migration.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let applied: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let applied = usize::try_from(applied).unwrap_or(usize::MAX);
    if applied > MIGRATIONS.len() {
        return Err(StoreError::Unavailable(format!(
            "events.db has schema version {applied}, newer than this build knows ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, (name, sql)) in MIGRATIONS.iter().enumerate().skip(applied) {
        tx.execute_batch(sql)
            .map_err(|e| StoreError::Unavailable(format!("migration {name} failed: {e}")))?;
        if i + 1 == HASH_CHAIN {
            chain_log(&tx)?;
        }
        tracing::info!(migration = name, "applied migration");
    }
    // PRAGMA takes no bound parameters; the value is our own count.
    tx.execute_batch(&format!("PRAGMA user_version = {}", MIGRATIONS.len()))?;
    tx.commit()?;
    Ok(())
}

/// Chains every event in position order from the genesis hash.
fn chain_log(conn: &Connection) -> Result<(), StoreError> {
    let mut update = conn.prepare("UPDATE events SET hash = ?2 WHERE position = ?1")?;
    let (mut after, mut prev) = (0, Hash::GENESIS);
    loop {
        let batch = query_events(
            conn,
            "position > ?1 ORDER BY position LIMIT ?2",
            params![after, CHAIN_BATCH],
        )?;
        let Some(last) = batch.last() else {
            return Ok(());
        };
        after = last.position;
        for event in &batch {
            prev = event_hash(&prev, event)?;
            update.execute(params![event.position, prev.0])?;
        }
        tracing::info!(position = after, "chained the log");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_applies_each_file_once() {
        let mut conn = Connection::open_in_memory().expect("open");
        migrate(&mut conn).expect("first");
        migrate(&mut conn).expect("second");
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(version, MIGRATIONS.len() as i64);
    }

    #[test]
    fn a_newer_file_is_refused() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("PRAGMA user_version = 999")
            .expect("set");
        assert!(matches!(
            migrate(&mut conn),
            Err(StoreError::Unavailable(_))
        ));
    }
}
