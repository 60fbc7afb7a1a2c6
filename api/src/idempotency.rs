//! `Idempotency-Key`: a keyed POST/PATCH/DELETE repeated by the same user
//! gets the first response back and runs nothing again.
//!
//! The key is claimed before the handler runs, so two concurrent requests
//! with one key never both execute; only 2xx responses are kept, so a failed
//! request may be retried with its key.
//!
//! A command's append marks the key in the transaction of its events (see
//! [`ticketflow_app::keyed`]), so a request that died after its commit and
//! before its response was stored is never run again: its retry is answered
//! from what it committed, and that response is then kept like any other.

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{Duration, Utc};
use sha2::{Digest, Sha256};
use ticketflow_app::keyed::{keyed, KeyedRequest};
use ticketflow_store::{Claim, CommandKey, StoredResponse};
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::IntoParams;

use crate::extract::MAX_BODY;
use ticketflow_app::bearer;
use ticketflow_app::ApiError;
use ticketflow_app::{AppState, AuthUser};

pub const HEADER: &str = "Idempotency-Key";
/// A claim whose request has not finished after this long is presumed dead.
const STALE_AFTER: Duration = Duration::seconds(60);
/// Records are kept at least this long (the contract's floor).
const KEEP_FOR: Duration = Duration::hours(24);
const KEY_MAX: usize = 255;

/// `Idempotency-Key`, in the description of every command.
pub struct IdempotencyKey;

impl IntoParams for IdempotencyKey {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let key = ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(KEY_MAX));
        let meaning = "Repeated by the same user, the request returns the first response \
            and appends nothing (keys are kept at least 24 h); 1 to 255 visible ASCII characters";
        vec![crate::openapi::header(HEADER, meaning, key)]
    }
}
/// Response headers worth replaying.
const KEPT_HEADERS: [&str; 4] = ["content-type", "etag", "x-position", "location"];

pub async fn idempotency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match run(state, req, next).await {
        Ok(response) | Err(response) => response,
    }
}

async fn run(state: AppState, req: Request, next: Next) -> Result<Response, Response> {
    // Auth routes are not commands, and their responses hold credentials,
    // which are never stored: a key on them is ignored.
    let changes = crate::rate_limits::is_command(req.method(), req.uri().path());
    let key = req
        .headers()
        .get(HEADER)
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let (Some(key), true) = (key, changes) else {
        return Ok(next.run(req).await);
    };
    // Unauthenticated requests fall through to the handler, which refuses them.
    // The rate limits may have checked the token already.
    let checked = req.extensions().get::<AuthUser>().cloned();
    let caller = checked.or_else(|| bearer(req.headers()).and_then(|t| state.authenticate(t).ok()));
    let Some(user) = caller else {
        return Ok(next.run(req).await);
    };
    if key.is_empty() || key.len() > KEY_MAX {
        return Err(ApiError::bad_header(
            "Idempotency-Key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        )
        .into_response());
    }
    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| ApiError::payload_too_large().into_response())?;
    let hash = request_hash(&parts.method, parts.uri.path(), &bytes);
    let now = Utc::now();
    let claim = state
        .idempotency
        .claim(user.id, &key, &hash, now, now - STALE_AFTER, now - KEEP_FOR)
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    let committed = match claim {
        Claim::Acquired => None,
        Claim::Committed(done) => Some(done),
        Claim::Done(stored) => return Ok(replay(stored)),
        Claim::Mismatch => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request",
            )
            .into_response())
        }
        Claim::InProgress => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_in_progress",
                "a request with this Idempotency-Key is still running",
            )
            .into_response())
        }
    };
    let request = KeyedRequest {
        key: CommandKey {
            user_id: user.id,
            key: key.clone(),
        },
        committed,
    };
    let handler = next.run(Request::from_parts(parts, Body::from(bytes)));
    // A claimed command runs to its end and settles its key even when the
    // client goes away (hyper drops the handler of a closed connection):
    // dropped midway, its key would answer `idempotency_in_progress` to every
    // retry until it went stale, a minute later.
    let settling = tokio::spawn(async move {
        let response = keyed(request, handler).await;
        settle(&state, user.id, &key, response).await
    });
    let mut response = settling.await.map_err(|e| {
        tracing::error!(error = %e, "a keyed command's task failed");
        let status = StatusCode::INTERNAL_SERVER_ERROR;
        ApiError::new(status, "internal", "the command failed").into_response()
    })?;
    if committed.is_some() {
        mark_replayed(&mut response);
    }
    Ok(response)
}

/// Frees a key whose release failed (a command refused for a database that
/// is down fails to release for the same reason) once the database is back:
/// until then every retry meets `idempotency_in_progress`, and left alone
/// the key would only free itself when stale.
async fn release_later(state: AppState, user_id: uuid::Uuid, key: String) {
    let mut pause = std::time::Duration::from_millis(200);
    let give_up = tokio::time::Instant::now() + STALE_AFTER.to_std().unwrap_or_default();
    loop {
        tokio::time::sleep(pause).await;
        match state.idempotency.release(user_id, &key).await {
            Ok(()) => return,
            Err(e) if tokio::time::Instant::now() >= give_up => {
                tracing::warn!(error = %e, "could not release an idempotency key; it frees itself when stale");
                return;
            }
            Err(_) => pause = (pause * 2).min(std::time::Duration::from_secs(2)),
        }
    }
}

/// Keeps a 2xx response for replay, or frees the key for a retry.
async fn settle(state: &AppState, user_id: uuid::Uuid, key: &str, response: Response) -> Response {
    if !response.status().is_success() {
        if state.idempotency.release(user_id, key).await.is_err() {
            tokio::spawn(release_later(state.clone(), user_id, key.to_string()));
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "response lost",
        )
        .into_response();
    };
    let headers = KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            let value = parts.headers.get(*name)?.to_str().ok()?;
            Some((name.to_string(), value.to_string()))
        })
        .collect();
    let stored = StoredResponse {
        status: parts.status.as_u16(),
        headers,
        body: bytes.to_vec(),
    };
    if let Err(e) = state.idempotency.complete(user_id, key, &stored).await {
        tracing::warn!(error = %e, "could not store idempotent response");
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn replay(stored: StoredResponse) -> Response {
    let mut response = Response::new(Body::from(stored.body));
    *response.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    for (name, value) in stored.headers {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response.headers_mut().insert(n, v);
        }
    }
    mark_replayed(&mut response);
    response
}

fn mark_replayed(response: &mut Response) {
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
}

fn request_hash(method: &Method, path: &str, body: &[u8]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(method.as_str());
    hasher.update([0]);
    hasher.update(path);
    hasher.update([0]);
    hasher.update(body);
    hasher.finalize().to_vec()
}
