//! Idempotency-Key records: the first response to a keyed request, replayed
//! to its retries.
//!
//! A keyed command's outcome is recorded twice. The append that commits its
//! events also marks the key with the stream and versions it wrote, in the
//! same transaction (see [`CommandKey`]); the response is stored once it is
//! built. So a retry after a crash between the two finds the mark
//! ([`Claim::Committed`]) and answers from the committed events instead of
//! running the command again; a key with neither was never committed and is
//! taken over once its claim is stale.

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

/// Whose request an append belongs to: carried in [`crate::Metadata`], it
/// makes the append mark the key in its own transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandKey {
    pub user_id: Uuid,
    pub key: String,
}

/// What a keyed command committed: its stream went from `from_version` to
/// `to_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommittedCommand {
    pub stream_id: Uuid,
    pub from_version: u64,
    pub to_version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is ours: run the request, then complete or release it.
    Acquired,
    /// The first request finished with this response.
    Done(StoredResponse),
    /// The key was used for a different request.
    Mismatch,
    /// The first request committed its events but its response was never
    /// stored (it died in between): answer from what it committed.
    Committed(CommittedCommand),
    /// The first request is still running.
    InProgress,
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Claims `key` for a request. A claim older than `stale_before` that never
    /// completed (and committed nothing) is taken over (its request died); a
    /// record older than `expired_before` is forgotten. Each claim also purges
    /// a bounded number of other expired records.
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

/// A record without a response: committed (its mark is set) or running.
pub(crate) fn committed_or_running(mark: (Option<Uuid>, Option<i64>, Option<i64>)) -> Claim {
    match mark {
        (Some(stream_id), Some(from), Some(to)) => Claim::Committed(CommittedCommand {
            stream_id,
            from_version: from as u64,
            to_version: to as u64,
        }),
        _ => Claim::InProgress,
    }
}
