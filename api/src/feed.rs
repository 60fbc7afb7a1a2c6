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
use utoipa::IntoParams;
use uuid::Uuid;

use crate::consistency::MinPosition;
use crate::extract::{Path, Query};
use crate::openapi::Reads;
use crate::paging::{List, PageQuery};
use crate::projects::ProjectPath;
use crate::views::{self, FeedItem};

use ticketflow_app::error_docs::Refused;
use ticketflow_app::ApiError;
use ticketflow_app::AppState;
use ticketflow_app::AuthUser;
use ticketflow_app::{params, path_id};

const NDJSON: &str = "application/x-ndjson";
/// Events read per query while streaming.
const CHUNK: i64 = 500;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// With `Accept: application/x-ndjson`: keep the response open and
    /// stream events as they are stored.
    #[param(value_type = Option<bool>)]
    follow: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    page: PageQuery,
}

/// The project's events, in position order.
///
/// `after` is a position. With `Accept: application/x-ndjson`, one
/// `FeedItem` per line up to the head (no default limit), or on and on with
/// `follow=true`.
#[utoipa::path(
    get, path = "/projects/{pid}/events", tag = "tickets", operation_id = "project_events",
    params(ProjectPath, FeedQuery, PageQuery, MinPosition),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of events, or their stream",
            content(
                (List<FeedItem> = "application/json"),
                (String = "application/x-ndjson"),
            )),
        Refused<403>, Refused<404>, Refused<422>, Reads,
    ),
)]
pub async fn events(
    State(state): State<AppState>,
    user: AuthUser,
    Path(ProjectPath { pid }): Path<ProjectPath>,
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
        let listed = page.respond(&events, views::feed_item, |e| e.position.to_string());
        return Ok(Json(listed).into_response());
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
                if let Err(e) = serde_json::to_writer(&mut lines, &views::feed_item(e)) {
                    return Some((Err(std::io::Error::other(e)), None));
                }
                lines.push(b'\n');
            }
            return Some((Ok(Bytes::from(lines)), Some(c)));
        }
    })
}
