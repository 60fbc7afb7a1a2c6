//! The HTTP API of ticketflow (the contract's Auth, Projects and Tickets
//! sections).
//!
//! Handlers are small: extract, run a command or a read, render. Commands go
//! through [`AppState::run_ticket_command`] / [`AppState::run_project_command`],
//! which load the aggregate, let the domain decide, and append.

mod aggregates;
mod auth;
mod command;
mod consistency;
mod error;
mod extract;
mod feed;
mod idempotency;
mod notifications;
mod paging;
mod password;
mod projects;
mod tickets;
mod tokens;
mod views;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, SubsecRound, Utc};
use futures::StreamExt;
use ticketflow_store::Watch;
use ticketflow_store::{Accounts, EventStore, IdempotencyStore};
use tower_http::trace::TraceLayer;

pub use aggregates::Aggregates;
pub use auth::{bearer, AuthUser};
pub use error::ApiError;
pub use extract::path_id;
pub use tokens::TokenKeys;

/// What every handler shares. Axum clones the state for each extractor and
/// middleware of every request, so it is one shared allocation.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct Shared {
    /// The event log: commands append to it; reads load from it until the
    /// projections exist.
    pub events: Arc<dyn EventStore>,
    /// Accounts and refresh tokens.
    pub accounts: Arc<dyn Accounts>,
    /// First responses to keyed requests.
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// The JWT secret, decoded once.
    pub tokens: Arc<TokenKeys>,
    /// The read models: what GETs, sockets and read marks go to.
    pub reads: Arc<dyn ticketflow_projections::ReadStore>,
    /// The log's head and the read models' checkpoints, as they move.
    pub watch: Watch,
    /// The read models X-Min-Position waits for.
    pub read_models: Vec<&'static str>,
    /// Aggregates as last seen, so commands rarely load, and the per-stream
    /// turns of writers.
    pub aggregates: Arc<aggregates::Aggregates>,
    /// Where read marks are announced to the reader's sockets (absent when
    /// this process runs without a broker).
    pub broker: Option<ticketflow_bus::Broker>,
}

/// The current time at the store's precision (microseconds), so a command's
/// response and a later read of the same event agree to the digit.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// `X-Position`: where the command's last event stands in the global log.
pub fn position_header(position: i64) -> (HeaderName, HeaderValue) {
    (
        HeaderName::from_static("x-position"),
        HeaderValue::from(position),
    )
}

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/auth/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/auth/refresh", post(auth::refresh))
        .route("/me", get(auth::me))
        .route("/projects", post(projects::create).get(projects::list))
        .route("/projects/{pid}", get(projects::get))
        .route(
            "/projects/{pid}/members",
            post(projects::add_member).get(projects::members),
        )
        .route(
            "/projects/{pid}/members/{uid}",
            axum::routing::delete(projects::remove_member),
        )
        .route(
            "/projects/{pid}/tickets",
            post(tickets::create).get(tickets::list),
        )
        .route(
            "/tickets/{id}",
            get(tickets::get)
                .patch(tickets::update)
                .delete(tickets::delete),
        )
        .route(
            "/tickets/{id}/comments",
            post(tickets::add_comment).get(tickets::comments),
        )
        .route("/tickets/{id}/history", get(tickets::history))
        .route("/projects/{pid}/events", get(feed::events))
        .route("/notifications", get(notifications::list))
        .route("/notifications/read-all", post(notifications::read_all))
        .route("/notifications/{id}/read", post(notifications::read))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotency,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            consistency::min_position,
        ));
    Router::new()
        .nest("/api", api)
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed",
            )
        })
        .layer(middleware::from_fn(refuse_large_bodies))
        .layer(DefaultBodyLimit::max(extract::MAX_BODY))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Refuses a declared body over the limit before any handler reads it, so
/// every route answers 413 the same way (bodies without a length are cut off
/// by [`DefaultBodyLimit`] as they are read).
async fn refuse_large_bodies(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    match declared {
        Some(len) if len > extract::MAX_BODY => refuse_after_draining(req, len).await,
        _ => next.run(req).await,
    }
}

/// Declared bodies up to this size are read to the end before the 413 goes
/// out; larger ones are not worth reading.
const DRAIN_MAX: usize = 8 * extract::MAX_BODY;

/// A 413 sent while the client is still writing its body makes the server
/// close a connection with unread data, and the client then sees a reset
/// (or a broken pipe) instead of the answer. So the body is read and dropped
/// first, chunk by chunk; one too large even for that gets the 413 with
/// `Connection: close`, so at least the connection is not reused.
async fn refuse_after_draining(req: Request, declared: usize) -> Response {
    let mut response = ApiError::payload_too_large().into_response();
    if declared <= DRAIN_MAX && drain(req.into_body(), DRAIN_MAX).await {
        return response;
    }
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Reads `body` to its end without keeping it; false if it failed or went
/// past `max` bytes.
async fn drain(body: axum::body::Body, max: usize) -> bool {
    let mut chunks = body.into_data_stream();
    let mut read = 0;
    while let Some(chunk) = chunks.next().await {
        match chunk {
            Ok(bytes) => read += bytes.len(),
            Err(_) => return false,
        }
        if read > max {
            return false;
        }
    }
    true
}
