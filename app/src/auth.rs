//! Who is calling: the [`AuthUser`] an access token proves, taken from a
//! request's `Authorization: Bearer` header (or, for sockets, `?token=`).

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use ticketflow_domain::Actor;
use uuid::Uuid;

use crate::error::ApiError;
use crate::tokens::Refused;
use crate::AppState;

/// The caller, from a valid `Authorization: Bearer` access token.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: Uuid,
    pub username: String,
    /// When the access token expires (Unix seconds): sockets close then.
    pub expires_at: i64,
    /// The refresh family the token comes from (`None` for tokens issued
    /// before tokens named it): sockets close when it is revoked.
    pub family: Option<Uuid>,
}

impl AuthUser {
    pub fn actor(&self) -> Actor {
        Actor {
            id: self.id,
            username: self.username.clone(),
        }
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer(parts: &axum::http::HeaderMap) -> Option<&str> {
    let value = parts.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    /// The caller a middleware already authenticated (the rate limits do),
    /// else the token's.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(checked) = parts.extensions.get::<AuthUser>() {
            return Ok(checked.clone());
        }
        let token = bearer(&parts.headers)
            .ok_or_else(|| ApiError::unauthenticated("missing bearer token"))?;
        state.authenticate(token)
    }
}

impl AppState {
    /// Checks an access token; the claims and the revoked families this
    /// process keeps in memory are all a request needs, so this touches no
    /// database.
    pub fn authenticate(&self, token: &str) -> Result<AuthUser, ApiError> {
        let claims = self
            .tokens
            .verify_access(token)
            .map_err(|e| ApiError::unauthenticated(refusal(&e)))?;
        Ok(AuthUser {
            id: claims.sub,
            username: claims.username,
            expires_at: claims.exp,
            family: claims.sid,
        })
    }
}

/// Why an access token was refused, in words a client author can act on
/// (jsonwebtoken's own messages are its variant names, "InvalidToken").
fn refusal(refused: &Refused) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    let kind = match refused {
        Refused::Revoked => {
            return "the access token's session was ended (logout, password change or a reused \
                    refresh token): log in again"
        }
        Refused::Invalid(e) => e.kind(),
    };
    match kind {
        ErrorKind::ExpiredSignature => "the access token has expired",
        ErrorKind::InvalidSignature => "the access token's signature is not ours",
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => "not an access token (a refresh token, or malformed)",
        _ => "invalid access token",
    }
}
