//! `GET /api/audit/head`: the head of the log's hash chain, for a deployment
//! to anchor elsewhere (see `docs/audit.md`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::consistency::MinPosition;
use crate::openapi::Reads;
use ticketflow_app::{ApiError, AppState, AuthUser};

/// The newest event's position and hash.
#[derive(Serialize, ToSchema)]
pub struct AuditHead {
    /// 0 for an empty log.
    position: i64,
    /// 64 lowercase hex digits; 64 zeros for an empty log.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    hash: String,
}

/// The head of the event log's hash chain. Any signed-in user may read it:
/// it says how long the log is and commits to its contents without showing
/// any of them.
#[utoipa::path(
    get, path = "/audit/head", tag = "audit", operation_id = "audit_head",
    params(MinPosition),
    security(("bearer" = [])),
    responses((status = 200, description = "The chain's head", body = AuditHead), Reads),
)]
pub async fn head(State(state): State<AppState>, _caller: AuthUser) -> Result<Response, ApiError> {
    let head = state.events.chain_head().await?;
    let Some(hash) = head.hash else {
        // Only while a migration chains a log written before the chain.
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "dependency_unavailable",
            "the log is still being chained; retry later",
        ));
    };
    let head = AuditHead {
        position: head.position,
        hash: hash.to_string(),
    };
    Ok(Json(head).into_response())
}
