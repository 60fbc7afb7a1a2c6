//! The caller's notifications: list (newest first), mark read, mark all read.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use ticketflow_projections::queries;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::{path_id, Path, Query};
use crate::paging::PageQuery;
use crate::AppState;

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
    let unread_only = match q.unread_only.as_deref() {
        None | Some("" | "false" | "0") => false,
        Some("true" | "1") => true,
        Some(_) => {
            return Err(ApiError::invalid(
                "unread_only",
                "unread_only must be true or false",
            ))
        }
    };
    let client = state.read_client().await?;
    let (unread, items) =
        queries::notifications(&client, user.id, unread_only, after, page.limit + 1).await?;
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
    let client = state.read_client().await?;
    if queries::mark_read(&client, user.id, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("notification"))
    }
}

pub async fn read_all(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<StatusCode, ApiError> {
    let client = state.read_client().await?;
    queries::mark_all_read(&client, user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
