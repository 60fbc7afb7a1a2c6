//! The caller's notifications: list (newest first), mark read, mark all read.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

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
    if !state.reads.mark_read(user.id, id).await? {
        return Err(ApiError::not_found("notification"));
    }
    announce_read(&state, &user, json!([id])).await;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn read_all(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<StatusCode, ApiError> {
    state.reads.mark_all_read(user.id).await?;
    announce_read(&state, &user, json!("all")).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Tells every notification socket of the reader (on any instance) so each
/// tab's badge stays right. Best effort: the REST answer already stands.
async fn announce_read(state: &AppState, user: &AuthUser, ids: Value) {
    let Some(broker) = &state.broker else { return };
    let unread = match state.reads.unread_count(user.id).await {
        Ok(unread) => unread,
        Err(e) => return tracing::warn!(error = %e, "cannot count unread notifications"),
    };
    let message = json!({ "type": "notifications_read", "ids": ids, "unread_count": unread });
    let subject = broker
        .subjects
        .channel("notifications_read", &user.id.to_string());
    if let Err(e) = broker
        .publish_channel(subject, None, message.to_string())
        .await
    {
        tracing::warn!(error = %e, "cannot announce notifications_read");
    }
}
