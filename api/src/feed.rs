//! The project's event feed: `GET /api/projects/{pid}/events`, in position
//! order. JSON pages by default; with `Accept: application/x-ndjson` one
//! event per line up to the head (or `limit`), and with `follow=true` the
//! response stays open and streams events as they are committed, until the
//! process drains (the stream then ends, and the client follows on from its
//! last position, on another instance).
//!
//! `types`, `since` and `until` narrow the feed (as `ticketflow events
//! export` does): the database skips what does not match. `since` and
//! `until` are inclusive positions or times; `after`, the exclusive cursor,
//! applies as well, so a client pages on with `after=<next_cursor>` and the
//! same filters. A `follow` ends once nothing after `until` can match.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
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
use ticketflow_store::{parse_types, Bound, EventFilter};

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
    /// Only these event types, comma-separated (e.g. `TicketCreated,TicketStatusChanged`).
    types: Option<String>,
    /// Events from this position (digits) or RFC 3339 time (`occurred_at`), inclusive.
    since: Option<String>,
    /// Events up to this position (digits) or RFC 3339 time (`occurred_at`), inclusive.
    until: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    page: PageQuery,
}

impl FeedQuery {
    /// The project's events these parameters select; a bad one is refused
    /// naming it.
    fn filter(&self, project_id: Uuid) -> Result<EventFilter, ApiError> {
        let bound = |name: &str, raw: &Option<String>| {
            raw.as_deref()
                .map(|r| r.parse::<Bound>())
                .transpose()
                .map_err(|must_be| ApiError::invalid(name, format!("{name} must be {must_be}")))
        };
        let types = self
            .types
            .as_deref()
            .map(parse_types)
            .transpose()
            .map_err(|must_be| ApiError::invalid("types", format!("types must be {must_be}")))?;
        Ok(EventFilter {
            project_id: Some(project_id),
            types: types.unwrap_or_default(),
            since: bound("since", &self.since)?,
            until: bound("until", &self.until)?,
        })
    }
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
    let filter = q.filter(project_id)?;
    state.member_project(project_id, &user).await?;
    let wants_ndjson = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(NDJSON));
    if !wants_ndjson {
        let page = q.page.page()?;
        let events = state
            .events
            .filtered_events(&filter, after, page.limit + 1)
            .await?;
        let listed = page.respond(&events, views::feed_item, |e| e.position.to_string());
        return Ok(Json(listed).into_response());
    }
    let limit = match q.page.limit {
        Some(_) => Some(q.page.page()?.limit),
        None => None,
    };
    let body = Body::from_stream(ndjson(state, filter, after, limit, follow));
    let content_type = [(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON))];
    Ok((content_type, body).into_response())
}

struct Cursor {
    state: AppState,
    filter: EventFilter,
    after: i64,
    left: Option<i64>,
    follow: bool,
}

/// Lines of events after `after`; ends at the head unless following.
fn ndjson(
    state: AppState,
    filter: EventFilter,
    after: i64,
    limit: Option<i64>,
    follow: bool,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    let cursor = Cursor {
        state,
        filter,
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
            // Taken before reading: the read then sees every event up to it.
            let head_before = *c.state.watch.head.borrow();
            let read_at = Utc::now();
            let events = match c
                .state
                .events
                .filtered_events(&c.filter, c.after, want)
                .await
            {
                Ok(events) => events,
                Err(e) => {
                    tracing::error!(error = %e, "the events feed cannot read the log");
                    return Some((Err(std::io::Error::other(e.to_string())), None));
                }
            };
            if events.is_empty() {
                if !c.follow || until_reached(c.filter.until, head_before, read_at) {
                    return None;
                }
                // Nothing up to `head_before` matched: wait past it, not
                // past the last match (which non-matching commits would
                // wake at once, over and over).
                c.after = c.after.max(head_before);
                if !next_commit_or_until(&c).await {
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

/// Whether a follow has streamed everything `until` admits, after a read
/// found nothing: a position the log had reached before that read, or a
/// time already past when it began.
fn until_reached(until: Option<Bound>, head_before: i64, read_at: DateTime<Utc>) -> bool {
    match until {
        None => false,
        Some(Bound::Position(p)) => head_before >= p,
        Some(Bound::Time(t)) => read_at > t,
    }
}

/// Waits for a commit past the cursor (any may be this project's: the
/// caller re-queries on each one) or, with a time `until`, for that time to
/// pass; false when the process drains first.
async fn next_commit_or_until(c: &Cursor) -> bool {
    let after = c.after;
    let mut watch = c.state.watch.head.clone();
    let until_passes = async {
        match c.filter.until {
            Some(Bound::Time(t)) => {
                tokio::time::sleep((t - Utc::now()).to_std().unwrap_or_default()).await
            }
            _ => std::future::pending().await,
        }
    };
    let woken = async {
        tokio::select! {
            grown = watch.wait_for(|h| *h > after) => grown.is_ok(),
            () = until_passes => true,
        }
    };
    c.state.drain.unless_begun(woken).await.unwrap_or(false)
}
