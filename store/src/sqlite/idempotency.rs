use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use super::{json, micros, SqliteStore};
use crate::idempotency::{Claim, IdempotencyStore, StoredResponse};
use crate::StoreError;

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn claim(
        &self,
        user_id: Uuid,
        key: &str,
        request_hash: &[u8],
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
        expired_before: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let claim = ClaimRequest {
            user_id,
            key: key.to_string(),
            request_hash: request_hash.to_vec(),
            now: micros(now),
            stale_before: micros(stale_before),
            expired_before: micros(expired_before),
        };
        // On the writer: the insert-or-take-over and the read of what won
        // happen with no other write in between, so one caller acquires.
        self.writer.write(move |conn| claim.run(conn)).await
    }

    async fn complete(
        &self,
        user_id: Uuid,
        key: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        let key = key.to_string();
        let headers = json(&response.headers)?;
        let (status, body) = (i64::from(response.status), response.body.clone());
        self.writer
            .write(move |conn| {
                conn.prepare_cached(
                    "UPDATE idempotency_keys
                     SET response_status = ?3, response_headers = ?4, response_body = ?5
                     WHERE user_id = ?1 AND key = ?2",
                )?
                .execute(params![user_id, key, status, headers, body])?;
                Ok(())
            })
            .await
    }

    async fn release(&self, user_id: Uuid, key: &str) -> Result<(), StoreError> {
        let key = key.to_string();
        self.writer
            .write(move |conn| {
                conn.prepare_cached(
                    "DELETE FROM idempotency_keys WHERE user_id = ?1 AND key = ?2
                     AND response_status IS NULL AND stream_id IS NULL",
                )?
                .execute(params![user_id, key])?;
                Ok(())
            })
            .await
    }
}

struct ClaimRequest {
    user_id: Uuid,
    key: String,
    request_hash: Vec<u8>,
    now: i64,
    stale_before: i64,
    expired_before: i64,
}

impl ClaimRequest {
    fn run(self, conn: &Connection) -> Result<Claim, StoreError> {
        // Expired records of others go first, a few per claim: no more pile
        // up than claims are made.
        conn.prepare_cached(
            "DELETE FROM idempotency_keys WHERE (user_id, key) IN (
                 SELECT user_id, key FROM idempotency_keys
                 WHERE created_at < ?3 AND NOT (user_id = ?1 AND key = ?2)
                 ORDER BY created_at LIMIT 16)",
        )?
        .execute(params![self.user_id, self.key, self.expired_before])?;
        // Insert, or take over a row that is dead (a stale claim that
        // committed nothing, or an expired record).
        let acquired = conn
            .prepare_cached(
                "INSERT INTO idempotency_keys (user_id, key, request_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (user_id, key) DO UPDATE
                   SET request_hash = ?3, created_at = ?4, response_status = NULL,
                       response_headers = NULL, response_body = NULL,
                       stream_id = NULL, from_version = NULL, to_version = NULL
                   WHERE (idempotency_keys.response_status IS NULL
                          AND idempotency_keys.stream_id IS NULL
                          AND idempotency_keys.created_at < ?5)
                      OR idempotency_keys.created_at < ?6",
            )?
            .execute(params![
                self.user_id,
                self.key,
                self.request_hash,
                self.now,
                self.stale_before,
                self.expired_before,
            ])?;
        if acquired == 1 {
            return Ok(Claim::Acquired);
        }
        type Stored = (Vec<u8>, Option<i64>, Option<String>, Option<Vec<u8>>);
        type Mark = (Option<Uuid>, Option<i64>, Option<i64>);
        let row: Option<(Stored, Mark)> = conn
            .prepare_cached(
                "SELECT request_hash, response_status, response_headers, response_body,
                        stream_id, from_version, to_version
                 FROM idempotency_keys WHERE user_id = ?1 AND key = ?2",
            )?
            .query_row(params![self.user_id, self.key], |r| {
                let stored = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
                Ok((stored, (r.get(4)?, r.get(5)?, r.get(6)?)))
            })
            .optional()?;
        let Some(((stored_hash, status, headers, body), mark)) = row else {
            return Ok(Claim::InProgress);
        };
        if stored_hash != self.request_hash {
            return Ok(Claim::Mismatch);
        }
        let Some(status) = status else {
            return Ok(crate::idempotency::committed_or_running(mark));
        };
        let headers = headers.unwrap_or_else(|| "[]".to_string());
        Ok(Claim::Done(StoredResponse {
            status: u16::try_from(status)
                .map_err(|_| StoreError::Corrupt(format!("response status {status}")))?,
            headers: serde_json::from_str(&headers)?,
            body: body.unwrap_or_default(),
        }))
    }
}
