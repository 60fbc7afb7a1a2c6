//! Access tokens (HS256 JWTs, 15 minutes) and refresh tokens (opaque,
//! single-use, 30 days, stored hashed).

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
use uuid::Uuid;

pub const ACCESS_TTL: Duration = Duration::minutes(15);
pub const REFRESH_TTL: Duration = Duration::days(30);
/// Access tokens whose signature has been checked, at most; past it they are
/// all forgotten at once (and checked again on their next use).
const VERIFIED_CAPACITY: usize = 10_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub username: String,
    pub iat: i64,
    pub exp: i64,
}

/// The signing secret, decoded once.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Tokens already verified, by their text: a client sends the same one
    /// with every request for 15 minutes, and checking its HMAC and parsing
    /// its claims again cost more than the rest of the authentication.
    verified: Mutex<HashMap<String, Claims>>,
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
            verified: Mutex::default(),
        }
    }

    pub fn issue_access(
        &self,
        user_id: Uuid,
        username: &str,
        now: DateTime<Utc>,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = Claims {
            sub: user_id,
            username: username.to_string(),
            iat: now.timestamp(),
            exp: (now + ACCESS_TTL).timestamp(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// The claims of a valid access token. A token verified before is
    /// only checked for expiry, as `decode` would (no leeway).
    pub fn verify_access(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        if let Some(claims) = self.recall(token) {
            let now = jsonwebtoken::get_current_timestamp() as i64;
            if claims.exp < now {
                return Err(ErrorKind::ExpiredSignature.into());
            }
            return Ok(claims);
        }
        let claims =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)?.claims;
        let mut verified = self.verified();
        if verified.len() >= VERIFIED_CAPACITY {
            verified.clear();
        }
        verified.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }

    fn recall(&self, token: &str) -> Option<Claims> {
        self.verified().get(token).cloned()
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, HashMap<String, Claims>> {
        // Each operation leaves the map whole: a panic elsewhere while it
        // was held does not make it wrong.
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
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

    #[test]
    fn a_remembered_token_is_refused_once_it_expires() {
        let keys = TokenKeys::new(b"secret");
        let user = Uuid::new_v4();
        // Issued so that it expires within the next second or two.
        let token = keys
            .issue_access(user, "ada", Utc::now() - ACCESS_TTL + Duration::seconds(1))
            .expect("token");
        let claims = keys.verify_access(&token).expect("valid at first");
        assert_eq!((claims.sub, claims.username.as_str()), (user, "ada"));
        assert!(keys.recall(&token).is_some(), "remembered once verified");

        let deadline = Instant::now() + StdDuration::from_secs(5);
        let refused = loop {
            match keys.verify_access(&token) {
                Ok(_) if Instant::now() < deadline => {
                    std::thread::sleep(StdDuration::from_millis(50))
                }
                outcome => break outcome,
            }
        };
        let kind = refused.expect_err("expired by now").into_kind();
        assert!(matches!(kind, ErrorKind::ExpiredSignature), "{kind:?}");
    }

    #[test]
    fn only_the_exact_verified_text_is_remembered() {
        let keys = TokenKeys::new(b"secret");
        let token = keys
            .issue_access(Uuid::new_v4(), "ada", Utc::now())
            .expect("token");
        keys.verify_access(&token).expect("valid");
        let mut forged = token.clone();
        forged.push('A');
        let kind = keys.verify_access(&forged).expect_err("forged").into_kind();
        assert!(matches!(kind, ErrorKind::InvalidSignature), "{kind:?}");
        let other = TokenKeys::new(b"another secret");
        assert!(other.verify_access(&token).is_err(), "another key's memory");
    }
}
