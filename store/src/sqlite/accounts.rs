use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
use uuid::Uuid;

use super::{from_micros, micros, taken, SqliteStore};
use crate::accounts::{Accounts, NewUser, RefreshOutcome, User, UserWithHash};
use crate::StoreError;

const USER_COLUMNS: &str = "user_id, username, display_name, created_at, password_hash";

fn user(row: &Row<'_>) -> Result<User, StoreError> {
    Ok(User {
        user_id: row.get(0)?,
        username: row.get(1)?,
        display_name: row.get(2)?,
        created_at: from_micros(row.get(3)?)?,
    })
}

fn user_with_hash(row: &Row<'_>) -> Result<UserWithHash, StoreError> {
    Ok(UserWithHash {
        user: user(row)?,
        password_hash: row.get(4)?,
    })
}

#[async_trait]
impl Accounts for SqliteStore {
    async fn create_user(&self, new: NewUser) -> Result<(), StoreError> {
        self.writer
            .write(move |conn| {
                let u = &new.user;
                conn.prepare_cached(
                    "INSERT INTO users (user_id, username, display_name, password_hash, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    u.user_id,
                    u.username,
                    u.display_name,
                    new.password_hash,
                    micros(u.created_at),
                ])
                .map_err(|e| taken(e, "users.username", "username"))?;
                Ok(())
            })
            .await
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<UserWithHash>, StoreError> {
        let username = username.to_string();
        self.readers
            .read(move |conn| {
                let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?1");
                conn.prepare_cached(&sql)?
                    .query_and_then([username], user_with_hash)?
                    .next()
                    .transpose()
            })
            .await
    }

    async fn user_by_id(&self, user_id: Uuid) -> Result<Option<User>, StoreError> {
        self.readers
            .read(move |conn| {
                let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE user_id = ?1");
                conn.prepare_cached(&sql)?
                    .query_and_then([user_id], user)?
                    .next()
                    .transpose()
            })
            .await
    }

    async fn insert_refresh_token(
        &self,
        token_hash: &[u8],
        family_id: Uuid,
        user_id: Uuid,
        password_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let token_hash = token_hash.to_vec();
        let password_hash = password_hash.to_string();
        // On the writer, one write at a time: a password change is wholly
        // before or after this.
        self.writer
            .write(move |conn| {
                let inserted = conn
                    .prepare_cached(
                        "INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at)
                         SELECT ?1, ?2, user_id, ?4 FROM users
                         WHERE user_id = ?3 AND password_hash = ?5",
                    )?
                    .execute(params![
                        token_hash,
                        family_id,
                        user_id,
                        micros(expires_at),
                        password_hash
                    ])?;
                Ok(inserted == 1)
            })
            .await
    }

    async fn rotate_refresh_token(
        &self,
        token_hash: &[u8],
        next_hash: &[u8],
        now: DateTime<Utc>,
        next_expires_at: DateTime<Utc>,
    ) -> Result<RefreshOutcome, StoreError> {
        let rotation = Rotation {
            token_hash: token_hash.to_vec(),
            next_hash: next_hash.to_vec(),
            now: micros(now),
            next_expires_at: micros(next_expires_at),
        };
        // On the writer: the check and the use happen with no other write in
        // between, so a token is used once however many present it at once.
        self.writer.write(move |conn| rotation.run(conn)).await
    }

    async fn revoke_refresh_family(
        &self,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError> {
        let token_hash = token_hash.to_vec();
        self.writer
            .write(move |conn| {
                let family: Option<Uuid> = conn
                    .prepare_cached("SELECT family_id FROM refresh_tokens WHERE token_hash = ?1")?
                    .query_row([token_hash], |r| r.get(0))
                    .optional()?;
                if let Some(family) = family {
                    conn.prepare_cached(
                        "INSERT INTO revoked_token_families (family_id, revoked_at)
                         VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    )?
                    .execute(params![family, micros(now)])?;
                }
                Ok(family)
            })
            .await
    }

    async fn password_hash(&self, user_id: Uuid) -> Result<Option<String>, StoreError> {
        self.readers
            .read(move |conn| {
                Ok(conn
                    .prepare_cached("SELECT password_hash FROM users WHERE user_id = ?1")?
                    .query_row([user_id], |r| r.get(0))
                    .optional()?)
            })
            .await
    }

    async fn change_password(
        &self,
        user_id: Uuid,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, StoreError> {
        let password_hash = password_hash.to_string();
        // On the writer: the new hash and the revocations land together.
        self.writer
            .write(move |conn| {
                conn.prepare_cached("UPDATE users SET password_hash = ?2 WHERE user_id = ?1")?
                    .execute(params![user_id, password_hash])?;
                let revoked = conn
                    .prepare_cached(
                        "INSERT INTO revoked_token_families (family_id, revoked_at)
                         SELECT DISTINCT family_id, ?2 FROM refresh_tokens WHERE user_id = ?1
                         ON CONFLICT DO NOTHING RETURNING family_id",
                    )?
                    .query_map(params![user_id, micros(now)], |r| r.get(0))?
                    .collect::<Result<Vec<Uuid>, _>>()?;
                Ok(revoked)
            })
            .await
    }

    async fn revoked_families_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, StoreError> {
        self.readers
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT family_id, revoked_at FROM revoked_token_families
                     WHERE revoked_at > ?1",
                )?
                .query_and_then([micros(since)], |r| {
                    Ok((r.get(0)?, from_micros(r.get(1)?)?))
                })?
                .collect()
            })
            .await
    }
}

struct Rotation {
    token_hash: Vec<u8>,
    next_hash: Vec<u8>,
    now: i64,
    next_expires_at: i64,
}

impl Rotation {
    fn run(self, conn: &Connection) -> Result<RefreshOutcome, StoreError> {
        let row: Option<(Uuid, Uuid, i64, Option<i64>, bool)> = conn
            .prepare_cached(
                "SELECT t.family_id, t.user_id, t.expires_at, t.used_at, r.family_id IS NOT NULL
                 FROM refresh_tokens t
                 LEFT JOIN revoked_token_families r ON r.family_id = t.family_id
                 WHERE t.token_hash = ?1",
            )?
            .query_row([&self.token_hash], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()?;
        let Some((family_id, user_id, expires_at, used_at, revoked)) = row else {
            return Ok(RefreshOutcome::Invalid);
        };
        if revoked || expires_at <= self.now {
            return Ok(RefreshOutcome::Invalid);
        }
        if used_at.is_some() {
            // A used token presented again means it leaked: end the family.
            conn.prepare_cached(
                "INSERT INTO revoked_token_families (family_id, revoked_at) VALUES (?1, ?2)
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![family_id, self.now])?;
            return Ok(RefreshOutcome::Reused { family_id });
        }
        conn.prepare_cached("UPDATE refresh_tokens SET used_at = ?2 WHERE token_hash = ?1")?
            .execute(params![self.token_hash, self.now])?;
        conn.prepare_cached(
            "INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at)
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            self.next_hash,
            family_id,
            user_id,
            self.next_expires_at
        ])?;
        Ok(RefreshOutcome::Rotated { user_id, family_id })
    }
}
