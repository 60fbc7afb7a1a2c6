//! Idempotency-Key records: the first response to a keyed request, replayed
//! to its retries.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is ours: run the request, then complete or release it.
    Acquired,
    /// The first request finished with this response.
    Done(StoredResponse),
    /// The key was used for a different request.
    Mismatch,
    /// The first request is still running.
    InProgress,
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Claims `key` for a request. A claim older than `stale_before` that never
    /// completed is taken over (its request died); a completed one older than
    /// `expired_before` is forgotten.
    async fn claim(
        &self,
        user_id: Uuid,
        key: &str,
        request_hash: &[u8],
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
        expired_before: DateTime<Utc>,
    ) -> Result<Claim, StoreError>;

    async fn complete(
        &self,
        user_id: Uuid,
        key: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError>;

    /// Gives the key up so the request may be retried with it.
    async fn release(&self, user_id: Uuid, key: &str) -> Result<(), StoreError>;
}
