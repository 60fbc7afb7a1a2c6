//! The caller's notifications: list (newest first), mark read, mark all read.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use ticketflow_projections::queries::Notification;
use utoipa::{IntoParams, ToSchema};

use crate::consistency::MinPosition;
use crate::extract::{Path, Query};
use crate::idempotency::IdempotencyKey;
use crate::openapi::{Reads, Writes};
use crate::paging::{List, PageQuery};
use ticketflow_app::error_docs::Refused;
use ticketflow_app::ApiError;
use ticketflow_app::AppState;
use ticketflow_app::AuthUser;
use ticketflow_app::{params, path_id};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only the unread ones.
    #[param(value_type = Option<bool>)]
    unread_only: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    page: PageQuery,
}

/// A page of the caller's notifications, newest first, and how many are unread.
#[derive(Serialize, ToSchema)]
pub struct Notifications<T> {
    #[serde(flatten)]
    page: List<T>,
    unread_count: i64,
}

/// A path naming one of the caller's notifications.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct NotificationPath {
    /// The notification's id.
    #[param(value_type = uuid::Uuid)]
    id: String,
}

/// The caller's notifications, newest first.
#[utoipa::path(
    get, path = "/notifications", tag = "notifications", operation_id = "list_notifications",
    params(ListQuery, PageQuery, MinPosition),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of notifications", body = Notifications<Notification>),
        Refused<422>, Reads,
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let page = q.page.page()?;
    let after = page
        .after
        .as_ref()
        .map(|_| page.after_number())
        .transpose()?;
    let unread_only = params::query_flag("unread_only", q.unread_only.as_deref())?;
    let (unread, items) = state
        .reads
        .notifications(user.id, unread_only, after, page.limit + 1)
        .await?;
    let page = page.respond(&items, |n| n, |n| n.seq.to_string());
    let body = Notifications {
        page,
        unread_count: unread,
    };
    Ok(Json(body).into_response())
}

/// Marks one of the caller's notifications read (again: still 204).
#[utoipa::path(
    post, path = "/notifications/{id}/read", tag = "notifications",
    operation_id = "read_notification",
    params(NotificationPath, IdempotencyKey),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Read; the caller's notification sockets hear of it"),
        Refused<404>, Writes,
    ),
)]
pub async fn read(
    State(state): State<AppState>,
    user: AuthUser,
    Path(NotificationPath { id }): Path<NotificationPath>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, "notification")?;
    state.mark_read(&user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Marks all the caller's notifications read.
#[utoipa::path(
    post, path = "/notifications/read-all", tag = "notifications",
    operation_id = "read_all_notifications",
    params(IdempotencyKey),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "All read; the caller's notification sockets hear of it"),
        Writes,
    ),
)]
pub async fn read_all(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<StatusCode, ApiError> {
    state.mark_all_read(&user).await?;
    Ok(StatusCode::NO_CONTENT)
}
