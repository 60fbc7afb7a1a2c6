//! Password hashing with argon2id, off the async threads (it is slow on purpose).

use std::sync::LazyLock;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::error::ApiError;

pub async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_now(password.as_bytes()))
        .await
        .map_err(internal)?
        .map_err(internal)
}

/// Whether `password` matches `hash`. Always does the full work, so timing
/// does not tell whether a username exists (callers pass [`DUMMY_HASH`] then).
/// The work is set by the parameters written in `hash`.
pub async fn verify(password: String, hash: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash).map_err(internal)?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
    .map_err(internal)?
}

/// A hash of a random password, for unknown usernames: made by the same
/// function as every stored hash, so it carries the same parameters and
/// verifying against it costs what a real check costs.
pub static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let mut password = [0u8; 32];
    OsRng.fill_bytes(&mut password);
    hash_now(&password).unwrap_or_default()
});

/// Makes [`DUMMY_HASH`] now, off the async threads, so that the first
/// login of an unknown user does not take a hash longer than the others.
pub async fn prepare_dummy_hash() {
    let _ = tokio::task::spawn_blocking(|| LazyLock::force(&DUMMY_HASH).len()).await;
}

/// The one place hashes are made (argon2id with the crate's default
/// parameters, a fresh salt each).
fn hash_now(password: &[u8]) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password, &salt)
        .map(|h| h.to_string())
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "password hashing failed");
    ApiError::new(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "password hashing failed",
    )
}

#[cfg(test)]
mod tests {
    use argon2::Params;

    use super::*;

    /// Everything in a hash that sets the cost of verifying against it.
    fn cost(hash: &str) -> (String, Option<u32>, Params, usize, usize) {
        let parsed = PasswordHash::new(hash).expect("a PHC string");
        let params = Params::try_from(&parsed).expect("argon2 parameters");
        let salt = parsed.salt.expect("salted").len();
        let output = parsed.hash.expect("an output").len();
        (
            parsed.algorithm.to_string(),
            parsed.version,
            params,
            salt,
            output,
        )
    }

    #[tokio::test]
    async fn the_dummy_hash_costs_exactly_what_a_stored_one_does() {
        let stored = hash("correct horse battery".into()).await.expect("hash");
        let (algorithm, version, params, salt, output) = cost(&stored);
        assert_eq!(algorithm, "argon2id");
        assert_eq!(
            cost(&DUMMY_HASH),
            (algorithm, version, params, salt, output)
        );
        assert_ne!(*DUMMY_HASH, stored, "a salt of its own");
        let matches = verify("correct horse battery".into(), DUMMY_HASH.clone());
        assert!(
            !matches.await.expect("verify"),
            "no password is known to match"
        );
    }
}
