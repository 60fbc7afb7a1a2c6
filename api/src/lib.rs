//! The HTTP API of ticketflow (the contract's Auth, Projects and Tickets
//! sections).
//!
//! Handlers are small: extract, run a command or a read, render. Commands go
//! through the application layer ([`ticketflow_app`]), which loads the
//! aggregate, lets the domain decide, and appends. Each handler carries its
//! OpenAPI description (`#[utoipa::path]`), served with a docs UI ([`docs`]).

mod audit;
mod auth;
mod consistency;
mod cors;
pub mod docs;
mod edge;
mod extract;
mod feed;
mod idempotency;
mod notifications;
pub mod openapi;
mod paging;
mod projects;
mod rate_limits;
mod request_log;
mod tickets;
mod views;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures::StreamExt;
use ticketflow_app::{ApiError, AppState};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use cors::cors;
pub use edge::{edge, MAX_HEADERS, MAX_HEADER_BYTES};
pub use request_log::{traced, REQUEST_ID};

/// What clients send, parsed and checked as the handlers do it, without a
/// server: the request bodies (into domain commands), `If-Match`, `as_of`
/// and paging cursors. Public for the fuzz targets (`fuzz/`).
pub mod input {
    pub use crate::extract::{parse_if_match, parse_json};
    pub use crate::paging::{Page, PageQuery};
    pub use crate::projects::{AddMember, CreateProject, PostAnnouncement};
    pub use crate::tickets::{parse_as_of, AddComment, CreateTicket, UpdateTicket};
}

/// `X-Position`: where the command's last event stands in the global log.
pub fn position_header(position: i64) -> (HeaderName, HeaderValue) {
    (
        HeaderName::from_static("x-position"),
        HeaderValue::from(position),
    )
}

/// Every route under `/api`, each registered with its handler's
/// `#[utoipa::path]`: the router and the OpenAPI description come from this
/// one list (`routes!` does not compile for a handler without one). A route
/// added any other way fails `server/tests/openapi.rs`.
fn operations() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(auth::register))
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::change_password))
        .routes(routes!(auth::me))
        .routes(routes!(projects::create, projects::list))
        .routes(routes!(projects::get))
        .routes(routes!(projects::add_member, projects::members))
        .routes(routes!(projects::post_announcement))
        .routes(routes!(projects::remove_member))
        .routes(routes!(tickets::create, tickets::list))
        .routes(routes!(tickets::get, tickets::update, tickets::delete))
        .routes(routes!(tickets::add_comment, tickets::comments))
        .routes(routes!(tickets::history))
        .routes(routes!(feed::events))
        .routes(routes!(notifications::list))
        .routes(routes!(notifications::read_all))
        .routes(routes!(notifications::read))
        .routes(routes!(audit::head))
}

/// The OpenAPI description of the routes under `/api`, in its frame
/// ([`openapi::ApiDoc`]). The process adds its other routes' (the
/// sockets') before serving it (see [`docs`]).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .nest("/api", operations())
        .into_openapi();
    doc.merge(docs::openapi());
    openapi::describe_headers(&mut doc);
    doc
}

pub fn router(state: AppState) -> Router {
    let (api, _) = operations().split_for_parts();
    let api = api
        .layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::idempotency,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            consistency::min_position,
        ))
        // Outermost: a refused request costs no idempotency claim and no wait.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            rate_limits::limit_requests,
        ))
        .fallback(|| async { ApiError::not_found("route") });
    // Paths outside /api are the process's to answer (the web app, or 404).
    Router::new()
        .nest("/api", api)
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed",
            )
        })
        .layer(middleware::from_fn(refuse_large_bodies))
        .layer(DefaultBodyLimit::max(extract::MAX_BODY))
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
