//! Schema migrations: plain SQL files in the workspace's `migrations/`,
//! embedded into the binary.

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
    let result = embedded::migrations::runner().run_async(client).await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await?;
    let report = result.map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))?;
    for m in report.applied_migrations() {
        tracing::info!(migration = %m, "applied migration");
    }
    Ok(())
}
