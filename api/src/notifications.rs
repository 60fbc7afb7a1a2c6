//! The caller's notifications: list (newest first), mark read, mark all read.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::extract::{Path, Query};
use crate::paging::PageQuery;
use ticketflow_app::ApiError;
use ticketflow_app::AppState;
use ticketflow_app::AuthUser;
use ticketflow_app::{params, path_id};

#[derive(Deserialize)]
pub struct ListQuery {
    unread_only: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
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
    let mut body = page.respond(items, |n| json!(n), |n| n.seq.to_string());
    body["unread_count"] = json!(unread);
    Ok(Json(body))
}

pub async fn read(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&id, "notification")?;
    state.mark_read(&user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn read_all(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<StatusCode, ApiError> {
    state.mark_all_read(&user).await?;
    Ok(StatusCode::NO_CONTENT)
}
