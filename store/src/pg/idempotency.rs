use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{prepared, PgStore};
use crate::idempotency::{Claim, IdempotencyStore, StoredResponse};
use crate::StoreError;

#[async_trait]
impl IdempotencyStore for PgStore {
    async fn claim(
        &self,
        user_id: Uuid,
        key: &str,
        request_hash: &[u8],
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
        expired_before: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        self.bounded(async move {
            let client = self.client().await?;
            // Insert, or take over a row that is dead (a stale claim that
            // committed nothing, or an expired record); the row lock makes exactly
            // one concurrent caller win. Expired records of others go on the way,
            // a few per claim: no more pile up than claims are made.
            let acquired = prepared::execute(
                &client,
                "WITH purged AS (
                     DELETE FROM idempotency_keys WHERE (user_id, key) IN (
                         SELECT user_id, key FROM idempotency_keys
                         WHERE created_at < $6 AND NOT (user_id = $1 AND key = $2)
                         ORDER BY created_at LIMIT 16 FOR UPDATE SKIP LOCKED)
                 )
                 INSERT INTO idempotency_keys (user_id, key, request_hash, created_at)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (user_id, key) DO UPDATE
                       SET request_hash = $3, created_at = $4, response_status = NULL,
                           response_headers = NULL, response_body = NULL,
                           stream_id = NULL, from_version = NULL, to_version = NULL
                       WHERE (idempotency_keys.response_status IS NULL
                              AND idempotency_keys.stream_id IS NULL
                              AND idempotency_keys.created_at < $5)
                          OR idempotency_keys.created_at < $6",
                &[
                    &user_id,
                    &key,
                    &request_hash,
                    &now,
                    &stale_before,
                    &expired_before,
                ],
            )
            .await?;
            if acquired == 1 {
                return Ok(Claim::Acquired);
            }
            let row = prepared::query_opt(
                &client,
                "SELECT request_hash, response_status, response_headers, response_body,
                        stream_id, from_version, to_version
                     FROM idempotency_keys WHERE user_id = $1 AND key = $2",
                &[&user_id, &key],
            )
            .await?;
            // Released between our insert and this read: the caller may retry.
            let Some(row) = row else {
                return Ok(Claim::InProgress);
            };
            let stored_hash: Vec<u8> = row.get(0);
            if stored_hash != request_hash {
                return Ok(Claim::Mismatch);
            }
            let Some(status) = row.get::<_, Option<i32>>(1) else {
                let mark = (row.get(4), row.get(5), row.get(6));
                return Ok(crate::idempotency::committed_or_running(mark));
            };
            let headers: serde_json::Value = row.get(2);
            Ok(Claim::Done(StoredResponse {
                status: status as u16,
                headers: serde_json::from_value(headers)?,
                body: row.get(3),
            }))
        })
        .await
    }

    async fn complete(
        &self,
        user_id: Uuid,
        key: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        self.bounded(async move {
            let client = self.client().await?;
            let headers = serde_json::to_value(&response.headers)?;
            prepared::execute(
                &client,
                "UPDATE idempotency_keys
                     SET response_status = $3, response_headers = $4, response_body = $5
                     WHERE user_id = $1 AND key = $2",
                &[
                    &user_id,
                    &key,
                    &(response.status as i32),
                    &headers,
                    &response.body,
                ],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn release(&self, user_id: Uuid, key: &str) -> Result<(), StoreError> {
        self.bounded(async move {
            let client = self.client().await?;
            prepared::execute(
                &client,
                "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2
                     AND response_status IS NULL AND stream_id IS NULL",
                &[&user_id, &key],
            )
            .await?;
            Ok(())
        })
        .await
    }
}
