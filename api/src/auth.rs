//! Registration, login, token refresh, logout, password change and `/api/me`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use ticketflow_app::error_docs::Refused;
use ticketflow_domain::user;
use ticketflow_store::{NewUser, RefreshOutcome, User};
use utoipa::ToSchema;
use uuid::Uuid;

use ticketflow_app::tokens::{self, ACCESS_TTL, REFRESH_TTL};
use ticketflow_app::{password, ApiError, AppState, AuthUser};

use crate::consistency::MinPosition;
use crate::extract::JsonBody;
use crate::openapi::{Open, Reads};
use crate::views::{self, UserView};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Register {
    #[schema(pattern = "^[a-z0-9_.-]{3,32}$")]
    username: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    password: String,
    /// Defaults to the username.
    #[schema(min_length = 1, max_length = 100)]
    display_name: Option<String>,
}

/// A session's tokens.
#[derive(Serialize, ToSchema)]
pub struct TokenPair {
    /// A JWT for `Authorization: Bearer`.
    access_token: String,
    /// The access token's lifetime in seconds.
    expires_in: i64,
    /// Opaque and single-use: `/auth/refresh` trades it for a new pair.
    refresh_token: String,
    #[schema(value_type = String, examples("Bearer"))]
    token_type: &'static str,
}

/// Creates an account.
#[utoipa::path(
    post, path = "/auth/register", tag = "auth", operation_id = "register",
    request_body = Register,
    responses(
        (status = 201, description = "The new account", body = UserView),
        Refused<409>, Open,
    ),
)]
pub async fn register(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Register>,
) -> Result<Response, ApiError> {
    user::validate_username(&body.username)?;
    user::validate_password(&body.password)?;
    let display_name = body.display_name.unwrap_or_else(|| body.username.clone());
    user::validate_display_name(&display_name)?;
    let user = User {
        user_id: Uuid::now_v7(),
        username: body.username,
        display_name,
        created_at: ticketflow_app::now(),
    };
    let password_hash = password::hash(body.password).await?;
    state
        .accounts
        .create_user(NewUser {
            user: user.clone(),
            password_hash,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(views::user(&user))).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    username: String,
    password: String,
}

/// Starts a session: a token pair for a username and password.
#[utoipa::path(
    post, path = "/auth/login", tag = "auth", operation_id = "login",
    request_body = Login,
    responses(
        (status = 200, description = "A new session's tokens", body = TokenPair),
        Refused<401>, Open,
    ),
)]
pub async fn login(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Login>,
) -> Result<Json<TokenPair>, ApiError> {
    let found = state.accounts.user_by_username(&body.username).await?;
    // Counted once the database answered: an outage costs nobody attempts.
    state.limits.password_attempt(&body.username)?;
    let hash = found
        .as_ref()
        .map_or_else(|| password::DUMMY_HASH.clone(), |u| u.password_hash.clone());
    let matches = password::verify(body.password, hash).await?;
    let Some(found) = found.filter(|_| matches) else {
        return Err(ApiError::unauthenticated("wrong username or password"));
    };
    let user = &found.user;
    new_session(&state, user.user_id, &user.username, &found.password_hash).await
}

/// A refresh token presented on its own (refresh, logout).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Presented {
    refresh_token: String,
}

/// Trades a refresh token for a new pair.
///
/// Refresh tokens are single-use: one presented again ends its whole
/// session (401).
#[utoipa::path(
    post, path = "/auth/refresh", tag = "auth", operation_id = "refresh",
    request_body = Presented,
    responses(
        (status = 200, description = "The session's next tokens", body = TokenPair),
        Refused<401>, Open,
    ),
)]
pub async fn refresh(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Presented>,
) -> Result<Json<TokenPair>, ApiError> {
    let (next, next_hash) = tokens::new_refresh_token();
    let now = Utc::now();
    let presented = tokens::hash_refresh_token(&body.refresh_token);
    let outcome = state
        .accounts
        .rotate_refresh_token(&presented, &next_hash, now, now + REFRESH_TTL)
        .await?;
    match outcome {
        RefreshOutcome::Rotated { user_id, family_id } => {
            let user = state
                .accounts
                .user_by_id(user_id)
                .await?
                .ok_or_else(|| ApiError::unauthenticated("user no longer exists"))?;
            token_pair(&state, &user.user_id, &user.username, family_id, next)
        }
        RefreshOutcome::Reused { family_id } => {
            state.announce_revocation(vec![family_id], now).await;
            Err(ApiError::unauthenticated(
                "refresh token was already used; its whole family is revoked",
            ))
        }
        RefreshOutcome::Invalid => Err(ApiError::unauthenticated("invalid refresh token")),
    }
}

/// Ends the session of a refresh token.
///
/// Ends the session (refresh family) of the presented token: 204 whether it
/// was live, already ended or never issued, as OAuth's token revocation
/// answers (RFC 7009): the client is logged out either way, and the answer
/// tells nothing about a guessed token.
#[utoipa::path(
    post, path = "/auth/logout", tag = "auth", operation_id = "logout",
    request_body = Presented,
    responses((status = 204, description = "The session is over"), Open),
)]
pub async fn logout(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Presented>,
) -> Result<StatusCode, ApiError> {
    let now = Utc::now();
    let presented = tokens::hash_refresh_token(&body.refresh_token);
    if let Some(family) = state
        .accounts
        .revoke_refresh_family(&presented, now)
        .await?
    {
        state.announce_revocation(vec![family], now).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    current_password: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128)]
    new_password: String,
}

/// Changes the caller's password.
///
/// Every session of theirs ends (their sockets close with 4401); the caller
/// gets a new session, as a login with the new password would give.
#[utoipa::path(
    post, path = "/auth/password", tag = "auth", operation_id = "change_password",
    request_body = ChangePassword,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The tokens of a new session", body = TokenPair),
        Refused<401>,
        (status = 403, description = "`wrong_password`: `current_password` is not the account's", body = ApiError),
        Open,
    ),
)]
pub async fn change_password(
    State(state): State<AppState>,
    caller: AuthUser,
    JsonBody(body): JsonBody<ChangePassword>,
) -> Result<Json<TokenPair>, ApiError> {
    user::validate_new_password(&body.new_password)?;
    let current = state
        .accounts
        .password_hash(caller.id)
        .await?
        .ok_or_else(|| ApiError::unauthenticated("user no longer exists"))?;
    // A stolen access token must not make guessing the password fast.
    state.limits.password_attempt(&caller.username)?;
    if !password::verify(body.current_password, current).await? {
        // Not 401: the caller is authenticated, and a 401 would send clients
        // down their refresh-and-retry path.
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_password",
            "current_password is not this account's password",
        )
        .with("field", "current_password"));
    }
    let new_hash = password::hash(body.new_password).await?;
    let now = Utc::now();
    let revoked = state
        .accounts
        .change_password(caller.id, &new_hash, now)
        .await?;
    state.announce_revocation(revoked, now).await;
    new_session(&state, caller.id, &caller.username, &new_hash).await
}

/// A new refresh family for the user, and its first pair of tokens, if the
/// password `checked` is still theirs.
async fn new_session(
    state: &AppState,
    user_id: Uuid,
    username: &str,
    checked: &str,
) -> Result<Json<TokenPair>, ApiError> {
    let (refresh, refresh_hash) = tokens::new_refresh_token();
    let family = tokens::new_family();
    let expires = Utc::now() + REFRESH_TTL;
    let started = state
        .accounts
        .insert_refresh_token(&refresh_hash, family, user_id, checked, expires)
        .await?;
    if !started {
        return Err(ApiError::unauthenticated(
            "the password changed while this request ran; log in again",
        ));
    }
    token_pair(state, &user_id, username, family, refresh)
}

fn token_pair(
    state: &AppState,
    user_id: &Uuid,
    username: &str,
    family: Uuid,
    refresh: String,
) -> Result<Json<TokenPair>, ApiError> {
    let access = state
        .tokens
        .issue_access(*user_id, username, family, Utc::now())
        .map_err(|e| {
            tracing::error!(error = %e, "cannot sign access token");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "cannot sign token",
            )
        })?;
    Ok(Json(TokenPair {
        access_token: access,
        expires_in: ACCESS_TTL.num_seconds(),
        refresh_token: refresh,
        token_type: "Bearer",
    }))
}

/// The caller's account.
#[utoipa::path(
    get, path = "/me", tag = "auth", operation_id = "me",
    params(MinPosition),
    security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = UserView), Reads),
)]
pub async fn me(State(state): State<AppState>, caller: AuthUser) -> Result<Response, ApiError> {
    let user = state
        .accounts
        .user_by_id(caller.id)
        .await?
        .ok_or_else(|| ApiError::unauthenticated("user no longer exists"))?;
    Ok(Json(views::user(&user)).into_response())
}
