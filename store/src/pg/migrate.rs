//! Schema migrations: plain SQL files in the workspace's `migrations/`,
//! embedded into the binary.

use tokio_postgres::Transaction;

use super::event_store::{hash_column, stored_event};
use crate::chain::{event_hash, Hash};
use crate::stream::EVENT_COLUMNS;
use crate::StoreError;

mod embedded {
    refinery::embed_migrations!("../migrations/postgres");
}

/// Arbitrary constant naming the migration lock.
const MIGRATION_LOCK: i64 = 0x7469_636b_6574; // "ticket"

/// Applies pending migrations. Idempotent, and safe when several instances
/// start at once: they queue on a session advisory lock, and each finds the
/// work done by the first.
pub async fn migrate(client: &mut tokio_postgres::Client) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let result = match embedded::migrations::runner().run_async(client).await {
        Ok(report) => chain_log(client).await.map(|()| report),
        Err(e) => Err(StoreError::Unavailable(format!("migration failed: {e}"))),
    };
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await?;
    for m in result?.applied_migrations() {
        tracing::info!(migration = %m, "applied migration");
    }
    Ok(())
}

/// Events read and chained per transaction.
const CHAIN_BATCH: i64 = 10_000;

/// Chains the events written before the hash chain existed (V10), while the
/// head row has no hash: in position order from the first event without
/// one, a batch per transaction, each holding the head row so the batch
/// that reaches the head sets its hash with no append in between. Appends
/// made meanwhile chain from the NULL head hash and stay NULL, so a later
/// batch takes them up. Once the head has a hash this does nothing: an
/// event without one is then a break for `audit verify` to report, not
/// something to paper over.
async fn chain_log(client: &mut tokio_postgres::Client) -> Result<(), StoreError> {
    let mut resume: Option<(i64, Hash)> = None;
    loop {
        let tx = client.transaction().await?;
        let head = tx
            .query_one("SELECT position, hash FROM event_log_head FOR UPDATE", &[])
            .await?;
        let head_position: i64 = head.try_get(0)?;
        if hash_column(&head, 1)?.is_some() {
            return Ok(tx.commit().await?);
        }
        let (after, mut prev) = match resume {
            Some(resume) => resume,
            None => start_of_unchained(&tx, head_position).await?,
        };
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events
             WHERE position > $1 AND position <= $2 ORDER BY position LIMIT $3"
        );
        let rows = tx
            .query(&sql, &[&after, &head_position, &CHAIN_BATCH])
            .await?;
        let (mut positions, mut hashes) = (Vec::new(), Vec::new());
        for row in &rows {
            let event = stored_event(row)?;
            prev = event_hash(&prev, &event)?;
            positions.push(event.position);
            hashes.push(prev.0.to_vec());
        }
        tx.execute(
            "UPDATE events e SET hash = u.hash
             FROM UNNEST($1::bigint[], $2::bytea[]) AS u(position, hash)
             WHERE e.position = u.position",
            &[&positions, &hashes],
        )
        .await?;
        let reached = positions.last().copied().unwrap_or(after);
        if reached >= head_position {
            tx.execute("UPDATE event_log_head SET hash = $1", &[&prev.0.as_slice()])
                .await?;
        }
        tx.commit().await?;
        tracing::info!(position = reached, head = head_position, "chained the log");
        resume = Some((reached, prev));
    }
}

/// The position before the first event without a hash (the head's, when
/// every event has one), and the hash to chain on from.
async fn start_of_unchained(
    tx: &Transaction<'_>,
    head_position: i64,
) -> Result<(i64, Hash), StoreError> {
    let first: Option<i64> = tx
        .query_one("SELECT min(position) FROM events WHERE hash IS NULL", &[])
        .await?
        .try_get(0)?;
    let after = first.map_or(head_position, |first| first - 1);
    if after == 0 {
        return Ok((0, Hash::GENESIS));
    }
    let row = tx
        .query_opt("SELECT hash FROM events WHERE position = $1", &[&after])
        .await?;
    match row.map(|row| hash_column(&row, 0)).transpose()?.flatten() {
        Some(hash) => Ok((after, hash)),
        None => Err(StoreError::Corrupt(format!(
            "cannot chain the log: event {after} is missing or has no hash"
        ))),
    }
}
