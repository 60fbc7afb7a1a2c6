//! Every HTTP request counted and timed by route, method and status, in one
//! middleware around all of a process's routes (the API, the socket
//! handshakes, the web app): no handler counts anything itself.
//!
//! The route is the pattern axum matched (`/api/tickets/{id}`), never the
//! path a client sent, so a scanner trying paths cannot grow the number of
//! series; what no route took is `unmatched`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

/// Requests answered, by `route`, `method` and `status`.
pub const REQUESTS: &str = "ticketflow_http_requests_total";
/// Seconds from a request's arrival to its response's head, by `route` and
/// `method` (a streamed body, or a socket after its handshake, is not in it).
pub const REQUEST_SECONDS: &str = "ticketflow_http_request_duration_seconds";

/// The route of requests no route took.
const UNMATCHED: &str = "unmatched";

pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = route(&req);
    let method = method(req.method());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(REQUEST_SECONDS, "route" => route.clone(), "method" => method)
        .record(started.elapsed());
    metrics::counter!(REQUESTS, "route" => route, "method" => method, "status" => status)
        .increment(1);
    response
}

/// The matched pattern; a nested router's fallback matches a pattern of
/// axum's own (a catch-all), which is no route either.
fn route(req: &Request) -> String {
    match req.extensions().get::<MatchedPath>() {
        Some(path) if !path.as_str().contains("__private__") => path.as_str().to_string(),
        _ => UNMATCHED.to_string(),
    }
}

/// The method, or `other` for one outside HTTP's own few (any token is a
/// method: a label per invented one would be a series per invention).
fn method(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}
