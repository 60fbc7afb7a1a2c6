//! Telling the process how far a projection following the log got, which is
//! what `X-Min-Position` waits on. (On PostgreSQL the batch's transaction
//! tells every instance itself.)

use async_trait::async_trait;
use ticketflow_store::sqlite::SqliteStore;
use ticketflow_store::StoreError;

#[async_trait]
pub trait Announce: Send + Sync + 'static {
    async fn announce_checkpoint(&self, name: &str, position: i64) -> Result<(), StoreError>;
}

/// To this process's watchers: nobody else has the files.
#[async_trait]
impl Announce for SqliteStore {
    async fn announce_checkpoint(&self, name: &str, position: i64) -> Result<(), StoreError> {
        SqliteStore::announce_checkpoint(self, name, position).await
    }
}
