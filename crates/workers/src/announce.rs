//! Telling the process (or every instance) how far a projection got, which
//! is what `X-Min-Position` waits on.

use async_trait::async_trait;
use ticketflow_store::pg::PgStore;
use ticketflow_store::sqlite::SqliteStore;
use ticketflow_store::StoreError;

#[async_trait]
pub trait Announce: Send + Sync + 'static {
    async fn announce_checkpoint(&self, name: &str, position: i64) -> Result<(), StoreError>;
}

/// To every instance, by NOTIFY.
#[async_trait]
impl Announce for PgStore {
    async fn announce_checkpoint(&self, name: &str, position: i64) -> Result<(), StoreError> {
        PgStore::announce_checkpoint(self, name, position).await
    }
}

/// To this process's watchers: nobody else has the files.
#[async_trait]
impl Announce for SqliteStore {
    async fn announce_checkpoint(&self, name: &str, position: i64) -> Result<(), StoreError> {
        SqliteStore::announce_checkpoint(self, name, position).await
    }
}
