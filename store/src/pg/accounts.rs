use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use super::{prepared, taken, PgStore};
use crate::accounts::{Accounts, NewUser, RefreshOutcome, User, UserWithHash};
use crate::StoreError;

const USER_COLUMNS: &str = "user_id, username, display_name, created_at, password_hash";

fn user(row: &Row) -> User {
    User {
        user_id: row.get(0),
        username: row.get(1),
        display_name: row.get(2),
        created_at: row.get(3),
    }
}

#[async_trait]
impl Accounts for PgStore {
    async fn create_user(&self, new: NewUser) -> Result<(), StoreError> {
        self.bounded(async move {
            let client = self.client().await?;
            let u = &new.user;
            prepared::execute(
                &client,
                "INSERT INTO users (user_id, username, display_name, password_hash, created_at)
                     VALUES ($1, $2, $3, $4, $5)",
                &[
                    &u.user_id,
                    &u.username,
                    &u.display_name,
                    &new.password_hash,
                    &u.created_at,
                ],
            )
            .await
            .map_err(|e| taken(e, "users_username_key", "username"))?;
            Ok(())
        })
        .await
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<UserWithHash>, StoreError> {
        self.bounded(async move {
            let client = self.client().await?;
            let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
            let row = prepared::query_opt(&client, &sql, &[&username]).await?;
            Ok(row.map(|r| UserWithHash {
                user: user(&r),
                password_hash: r.get(4),
            }))
        })
        .await
    }

    async fn user_by_id(&self, user_id: Uuid) -> Result<Option<User>, StoreError> {
        self.bounded(async move {
            let client = self.client().await?;
            let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE user_id = $1");
            Ok(prepared::query_opt(&client, &sql, &[&user_id])
                .await?
                .map(|r| user(&r)))
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
        self.bounded(async move {
            let client = self.client().await?;
            // FOR SHARE waits for a password change in flight and then sees its
            // hash: either this session exists before the change revokes the
            // user's families, or it is not started.
            let inserted = prepared::execute(
                &client,
                "INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at)
                 SELECT $1, $2, user_id, $4 FROM users
                 WHERE user_id = $3 AND password_hash = $5 FOR SHARE",
                &[
                    &token_hash,
                    &family_id,
                    &user_id,
                    &expires_at,
                    &password_hash,
                ],
            )
            .await?;
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
        self.bounded(async move {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            let row = tx
                .query_opt(
                    "SELECT t.family_id, t.user_id, t.expires_at, t.used_at, r.family_id IS NOT NULL
                     FROM refresh_tokens t
                     LEFT JOIN revoked_token_families r ON r.family_id = t.family_id
                     WHERE t.token_hash = $1 FOR UPDATE OF t",
                    &[&token_hash],
                )
                .await?;
            let Some(row) = row else {
                return Ok(RefreshOutcome::Invalid);
            };
            let (family_id, user_id): (Uuid, Uuid) = (row.get(0), row.get(1));
            let expires_at: DateTime<Utc> = row.get(2);
            let used_at: Option<DateTime<Utc>> = row.get(3);
            let revoked: bool = row.get(4);
            if revoked || expires_at <= now {
                return Ok(RefreshOutcome::Invalid);
            }
            if used_at.is_some() {
                // A used token presented again means it leaked: end the family.
                tx.execute(
                    "INSERT INTO revoked_token_families (family_id, revoked_at) VALUES ($1, $2)
                     ON CONFLICT DO NOTHING",
                    &[&family_id, &now],
                )
                .await?;
                tx.commit().await?;
                return Ok(RefreshOutcome::Reused { family_id });
            }
            tx.execute(
                "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1",
                &[&token_hash, &now],
            )
            .await?;
            tx.execute(
                "INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at)
                 VALUES ($1, $2, $3, $4)",
                &[&next_hash, &family_id, &user_id, &next_expires_at],
            )
            .await?;
            tx.commit().await?;
            Ok(RefreshOutcome::Rotated { user_id, family_id })
        })
        .await
    }

    async fn revoke_refresh_family(
        &self,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError> {
        self.bounded(async move {
            let client = self.client().await?;
            let row = prepared::query_opt(
                &client,
                "WITH family AS (SELECT family_id FROM refresh_tokens WHERE token_hash = $1),
                      revoked AS (INSERT INTO revoked_token_families (family_id, revoked_at)
                                  SELECT family_id, $2 FROM family ON CONFLICT DO NOTHING)
                 SELECT family_id FROM family",
                &[&token_hash, &now],
            )
            .await?;
            Ok(row.map(|r| r.get(0)))
        })
        .await
    }

    async fn password_hash(&self, user_id: Uuid) -> Result<Option<String>, StoreError> {
        self.bounded(async move {
            let client = self.client().await?;
            let row = prepared::query_opt(
                &client,
                "SELECT password_hash FROM users WHERE user_id = $1",
                &[&user_id],
            )
            .await?;
            Ok(row.map(|r| r.get(0)))
        })
        .await
    }

    async fn change_password(
        &self,
        user_id: Uuid,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, StoreError> {
        self.bounded(async move {
            let mut client = self.client().await?;
            let tx = client.transaction().await?;
            tx.execute(
                "UPDATE users SET password_hash = $2 WHERE user_id = $1",
                &[&user_id, &password_hash],
            )
            .await?;
            let rows = tx
                .query(
                    "INSERT INTO revoked_token_families (family_id, revoked_at)
                     SELECT DISTINCT family_id, $2::timestamptz FROM refresh_tokens WHERE user_id = $1
                     ON CONFLICT DO NOTHING RETURNING family_id",
                    &[&user_id, &now],
                )
                .await?;
            tx.commit().await?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
        .await
    }

    async fn revoked_families_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, StoreError> {
        self.bounded(async move {
            let client = self.client().await?;
            let rows = prepared::query(
                &client,
                "SELECT family_id, revoked_at FROM revoked_token_families WHERE revoked_at > $1",
                &[&since],
            )
            .await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
        .await
    }
}
