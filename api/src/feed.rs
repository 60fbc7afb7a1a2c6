//! The project's event feed: `GET /api/projects/{pid}/events`, in position
//! order. JSON pages by default; with `Accept: application/x-ndjson` one
//! event per line up to the head (or `limit`), and with `follow=true` the
//! response stays open and streams events as they are committed, until the
//! process drains (the stream then ends, and the client follows on from its
//! last position, on another instance).

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::stream::{self, Stream};
use serde::Deserialize;
use serde_json::{json, Value};
use ticketflow_store::StoredEvent;
use uuid::Uuid;

use crate::extract::{Path, Query};
use crate::paging::PageQuery;
use ticketflow_app::ApiError;
use ticketflow_app::AppState;
use ticketflow_app::AuthUser;
use ticketflow_app::{params, path_id};

const NDJSON: &str = "application/x-ndjson";
/// Events read per query while streaming.
const CHUNK: i64 = 500;

#[derive(Deserialize)]
pub struct FeedQuery {
    follow: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

/// A feed item: the event as the contract names its fields.
pub fn item(e: &StoredEvent) -> Value {
    json!({
        "event_id": e.event_id,
        "position": e.position,
        "type": e.event_type,
        "schema_version": e.schema_version,
        "project_id": e.project_id,
        "ticket_id": (e.stream_type == "ticket").then_some(e.stream_id),
        "version": e.version,
        "actor": e.actor,
        "occurred_at": e.occurred_at,
        "data": e.data,
    })
}

pub async fn events(
    State(state): State<AppState>,
    user: AuthUser,
    Path(pid): Path<String>,
    Query(q): Query<FeedQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let project_id = path_id(&pid, "project")?;
    let after = q.page.page_after_number()?;
    let follow = params::query_flag("follow", q.follow.as_deref())?;
    state.member_project(project_id, &user).await?;
    let wants_ndjson = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(NDJSON));
    if !wants_ndjson {
        let page = q.page.page()?;
        let events = state
            .events
            .project_events(project_id, after, page.limit + 1)
            .await?;
        return Ok(Json(page.respond(events, item, |e| e.position.to_string())).into_response());
    }
    let limit = match q.page.limit {
        Some(_) => Some(q.page.page()?.limit),
        None => None,
    };
    let body = Body::from_stream(ndjson(state, project_id, after, limit, follow));
    let content_type = [(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON))];
    Ok((content_type, body).into_response())
}

struct Cursor {
    state: AppState,
    project_id: Uuid,
    after: i64,
    left: Option<i64>,
    follow: bool,
}

/// Lines of events after `after`; ends at the head unless following.
fn ndjson(
    state: AppState,
    project_id: Uuid,
    after: i64,
    limit: Option<i64>,
    follow: bool,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    let cursor = Cursor {
        state,
        project_id,
        after,
        left: limit,
        follow,
    };
    stream::unfold(Some(cursor), |cursor| async move {
        let mut c = cursor?;
        loop {
            if c.left == Some(0) {
                return None;
            }
            let want = c.left.map_or(CHUNK, |l| l.min(CHUNK));
            let events = match c
                .state
                .events
                .project_events(c.project_id, c.after, want)
                .await
            {
                Ok(events) => events,
                Err(e) => {
                    tracing::error!(error = %e, "the events feed cannot read the log");
                    return Some((Err(std::io::Error::other(e.to_string())), None));
                }
            };
            if events.is_empty() {
                if !c.follow {
                    return None;
                }
                let head = c.after;
                let mut watch = c.state.watch.head.clone();
                // Any commit may be this project's: re-query on each one.
                let grown = c.state.drain.unless_begun(watch.wait_for(|h| *h > head));
                if !matches!(grown.await, Some(Ok(_))) {
                    return None;
                }
                continue;
            }
            c.after = events.last().map_or(c.after, |e| e.position);
            c.left = c.left.map(|l| l - events.len() as i64);
            let mut lines = Vec::new();
            for e in &events {
                lines.extend_from_slice(item(e).to_string().as_bytes());
                lines.push(b'\n');
            }
            return Some((Ok(Bytes::from(lines)), Some(c)));
        }
    })
}
