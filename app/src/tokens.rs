//! Access tokens (HS256 JWTs, 15 minutes) and refresh tokens (opaque,
//! single-use, 30 days, stored hashed), and the refresh families this
//! process knows to be revoked.
//!
//! An access token names its refresh family (the login it comes from) in
//! `sid`. A revoked family's access tokens are refused from the moment this
//! process learns of it (see [`crate::revocations`]) until they would have
//! expired anyway; tokens without `sid` (issued before it existed) live out
//! their 15 minutes.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use uuid::Uuid;

pub const ACCESS_TTL: Duration = Duration::minutes(15);
pub const REFRESH_TTL: Duration = Duration::days(30);
/// Access tokens whose signature has been checked, at most; past it they are
/// all forgotten at once (and checked again on their next use).
const VERIFIED_CAPACITY: usize = 10_000;
/// How long past its revocation a family is remembered: its last access
/// token was issued at the latest then (a refresh racing the revocation by
/// a moment included), so it has expired by the end of this.
pub const REMEMBER_REVOKED: Duration = Duration::minutes(16);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub username: String,
    pub iat: i64,
    pub exp: i64,
    /// The refresh family (login session) the token was issued from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
}

/// Why an access token is refused.
#[derive(Debug)]
pub enum Refused {
    /// Not a valid token of ours (expired, forged, malformed).
    Invalid(jsonwebtoken::errors::Error),
    /// Its refresh family has been revoked.
    Revoked,
}

/// The signing secret, decoded once, and what this process remembers of
/// access tokens.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    memory: Mutex<Memory>,
    /// Bumped whenever a family is revoked: open sockets look again at
    /// whether theirs is.
    revoked_signal: watch::Sender<u64>,
}

/// Behind one lock, so a token is never remembered as verified once its
/// family is known to be revoked: each request takes this lock once.
#[derive(Default)]
struct Memory {
    /// Tokens already verified (and not revoked), by their text: a client
    /// sends the same one with every request for 15 minutes, and checking
    /// its HMAC and parsing its claims again cost more than the rest of the
    /// authentication.
    verified: HashMap<String, Claims>,
    /// Revoked families, each until it may be forgotten (Unix seconds).
    revoked: HashMap<Uuid, i64>,
}

impl TokenKeys {
    pub fn new(secret: &[u8]) -> Self {
        // The algorithm is pinned: a token claiming any other (or "none") fails.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        validation.leeway = 0;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            memory: Mutex::default(),
            revoked_signal: watch::Sender::new(0),
        }
    }

    /// An access token of `family` for the user, valid from `now`.
    pub fn issue_access(
        &self,
        user_id: Uuid,
        username: &str,
        family: Uuid,
        now: DateTime<Utc>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = Claims {
            sub: user_id,
            username: username.to_string(),
            iat: now.timestamp(),
            exp: (now + ACCESS_TTL).timestamp(),
            sid: Some(family),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// The claims of a valid access token of a family not revoked. A token
    /// verified before is only checked for expiry, as `decode` would (no
    /// leeway).
    pub fn verify_access(&self, token: &str) -> Result<Claims, Refused> {
        if let Some(claims) = self.memory().verified.get(token).cloned() {
            let now = jsonwebtoken::get_current_timestamp() as i64;
            if claims.exp < now {
                return Err(Refused::Invalid(ErrorKind::ExpiredSignature.into()));
            }
            return Ok(claims);
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(Refused::Invalid)?
            .claims;
        let mut memory = self.memory();
        if claims.sid.is_some_and(|f| memory.revoked.contains_key(&f)) {
            return Err(Refused::Revoked);
        }
        if memory.verified.len() >= VERIFIED_CAPACITY {
            memory.verified.clear();
        }
        memory.verified.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }

    /// Whether `family` is known here to be revoked.
    pub fn is_revoked(&self, family: Uuid) -> bool {
        self.memory().revoked.contains_key(&family)
    }

    /// Remembers `families` as revoked at `revoked_at` (Unix seconds),
    /// forgets their verified tokens and, if any was news, wakes the sockets.
    /// Families revoked too long ago to have a live token are skipped.
    pub fn revoke(&self, families: &[Uuid], revoked_at: i64) {
        let now = Utc::now().timestamp();
        let until = revoked_at + REMEMBER_REVOKED.num_seconds();
        if until < now || families.is_empty() {
            return;
        }
        let mut memory = self.memory();
        memory.revoked.retain(|_, until| *until >= now);
        let mut news = false;
        for family in families {
            news |= memory.revoked.insert(*family, until).is_none();
        }
        if news {
            memory
                .verified
                .retain(|_, claims| !claims.sid.is_some_and(|f| families.contains(&f)));
            drop(memory);
            self.revoked_signal.send_modify(|n| *n += 1);
        }
    }

    /// Changes whenever a family is revoked; marked changed from the start,
    /// so its first wait returns at once (a revocation may have come since
    /// the socket's token was checked).
    pub fn revocations(&self) -> watch::Receiver<u64> {
        let mut receiver = self.revoked_signal.subscribe();
        receiver.mark_changed();
        receiver
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        // Each operation leaves the maps whole: a panic elsewhere while they
        // were held does not make them wrong.
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A fresh refresh token and the hash under which it is stored.
pub fn new_refresh_token() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_refresh_token(&token);
    (token, hash)
}

pub fn hash_refresh_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Fresh family id for a login's chain of refresh tokens.
pub fn new_family() -> Uuid {
    Uuid::new_v4()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration as StdDuration, Instant};

    use super::*;

    fn kind(refused: Refused) -> ErrorKind {
        match refused {
            Refused::Invalid(e) => e.into_kind(),
            Refused::Revoked => panic!("refused as revoked"),
        }
    }

    #[test]
    fn a_remembered_token_is_refused_once_it_expires() {
        let keys = TokenKeys::new(b"secret");
        let user = Uuid::new_v4();
        // Issued so that it expires within the next second or two.
        let issued = Utc::now() - ACCESS_TTL + Duration::seconds(1);
        let token = keys
            .issue_access(user, "ada", new_family(), issued)
            .expect("token");
        let claims = keys.verify_access(&token).expect("valid at first");
        assert_eq!((claims.sub, claims.username.as_str()), (user, "ada"));
        assert!(
            keys.memory().verified.contains_key(&token),
            "remembered once verified"
        );

        let deadline = Instant::now() + StdDuration::from_secs(5);
        let refused = loop {
            match keys.verify_access(&token) {
                Ok(_) if Instant::now() < deadline => {
                    std::thread::sleep(StdDuration::from_millis(50))
                }
                outcome => break outcome,
            }
        };
        let kind = kind(refused.expect_err("expired by now"));
        assert!(matches!(kind, ErrorKind::ExpiredSignature), "{kind:?}");
    }

    #[test]
    fn only_the_exact_verified_text_is_remembered() {
        let keys = TokenKeys::new(b"secret");
        let token = keys
            .issue_access(Uuid::new_v4(), "ada", new_family(), Utc::now())
            .expect("token");
        keys.verify_access(&token).expect("valid");
        let mut forged = token.clone();
        forged.push('A');
        let kind = kind(keys.verify_access(&forged).expect_err("forged"));
        assert!(matches!(kind, ErrorKind::InvalidSignature), "{kind:?}");
        let other = TokenKeys::new(b"another secret");
        assert!(other.verify_access(&token).is_err(), "another key's memory");
    }

    #[test]
    fn a_revoked_familys_tokens_are_refused_remembered_or_not() {
        let keys = TokenKeys::new(b"secret");
        let (family, other) = (new_family(), new_family());
        let now = Utc::now();
        let user = Uuid::new_v4();
        let seen = keys.issue_access(user, "ada", family, now).expect("token");
        let unseen = keys
            .issue_access(user, "ada", family, now - Duration::seconds(1))
            .expect("token");
        let kept = keys.issue_access(user, "ada", other, now).expect("token");
        keys.verify_access(&seen).expect("valid before");
        let mut signal = keys.revocations();
        signal.borrow_and_update();

        keys.revoke(&[family], now.timestamp());
        assert!(signal.has_changed().expect("open"), "sockets are woken");
        for token in [&seen, &unseen] {
            let refused = keys.verify_access(token).expect_err("revoked");
            assert!(matches!(refused, Refused::Revoked), "{refused:?}");
        }
        assert!(keys.is_revoked(family) && !keys.is_revoked(other));
        keys.verify_access(&kept)
            .expect("another family is untouched");

        signal.borrow_and_update();
        keys.revoke(&[family], now.timestamp());
        assert!(!signal.has_changed().expect("open"), "no news, no wake-up");
    }

    #[test]
    fn families_revoked_longer_ago_than_a_token_lives_are_not_kept() {
        let keys = TokenKeys::new(b"secret");
        let family = new_family();
        let long_ago = (Utc::now() - REMEMBER_REVOKED - Duration::seconds(1)).timestamp();
        keys.revoke(&[family], long_ago);
        assert!(!keys.is_revoked(family));
    }

    #[test]
    fn a_token_without_a_family_is_accepted_until_it_expires() {
        let keys = TokenKeys::new(b"secret");
        let now = Utc::now();
        let claims = serde_json::json!({
            "sub": Uuid::new_v4(), "username": "ada",
            "iat": now.timestamp(), "exp": (now + ACCESS_TTL).timestamp(),
        });
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding)
            .expect("token");
        keys.revoke(&[new_family()], now.timestamp());
        let claims = keys.verify_access(&token).expect("a token from before sid");
        assert_eq!(claims.sid, None);
    }
}
