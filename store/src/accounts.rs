//! User accounts and refresh tokens.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub user_id: Uuid,
    pub username: String,
    pub display_name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct UserWithHash {
    pub user: User,
    pub password_hash: String,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub user: User,
    pub password_hash: String,
}

/// The result of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The token was live; it is now used and its successor stored in its
    /// family.
    Rotated { user_id: Uuid, family_id: Uuid },
    /// The token had been used before: its family is now revoked.
    Reused { family_id: Uuid },
    /// Unknown, expired or revoked.
    Invalid,
}

#[async_trait]
pub trait Accounts: Send + Sync + 'static {
    /// Fails with [`StoreError::Taken`]`("username")` if the name is taken.
    async fn create_user(&self, user: NewUser) -> Result<(), StoreError>;
    async fn user_by_username(&self, username: &str) -> Result<Option<UserWithHash>, StoreError>;
    async fn user_by_id(&self, user_id: Uuid) -> Result<Option<User>, StoreError>;

    /// Stores the first token of a new family (a session), provided the
    /// user's password hash is still `password_hash`, the one just checked;
    /// false if not: a login that checked a password being changed at that
    /// moment must not start a session the change does not end.
    async fn insert_refresh_token(
        &self,
        token_hash: &[u8],
        family_id: Uuid,
        user_id: Uuid,
        password_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Uses `token_hash` once and stores `next_hash` in its family.
    async fn rotate_refresh_token(
        &self,
        token_hash: &[u8],
        next_hash: &[u8],
        now: DateTime<Utc>,
        next_expires_at: DateTime<Utc>,
    ) -> Result<RefreshOutcome, StoreError>;

    /// Revokes the family of `token_hash` (any token of it, used or not,
    /// expired or not) as of `now`; returns the family, `None` for a token
    /// never issued. Revoking a revoked family changes nothing.
    async fn revoke_refresh_family(
        &self,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<Uuid>, StoreError>;

    /// The stored hash of `user_id`'s password.
    async fn password_hash(&self, user_id: Uuid) -> Result<Option<String>, StoreError>;

    /// Stores `user_id`'s new password hash and revokes every refresh family
    /// of the user as of `now`, in one transaction; returns the families this
    /// revoked (those revoked before are left as they were).
    async fn change_password(
        &self,
        user_id: Uuid,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, StoreError>;

    /// The families revoked after `since`, with when.
    async fn revoked_families_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, StoreError>;
}
