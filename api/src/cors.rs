//! CORS: lets the allowed browser pages ([`Origins`]) on other origins call
//! the API, preflights included, for every route. Tokens travel in the
//! `Authorization` header, never in cookies, so credentials stay off.

use std::time::Duration;

use axum::http::{header, HeaderName, Method};
use ticketflow_app::Origins;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// How long a browser may reuse a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The CORS layer for `origins`, answering preflights for the request headers
/// the contract uses and exposing the response headers clients read.
pub fn cors(origins: Origins) -> CorsLayer {
    let allow = AllowOrigin::predicate(move |origin, request| {
        let host = request
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok());
        origin
            .to_str()
            .is_ok_and(|origin| origins.allows(origin, host))
    });
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
        .allow_headers([
            header::ACCEPT,
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("x-min-position"),
            crate::REQUEST_ID,
        ])
        .expose_headers([
            HeaderName::from_static("x-position"),
            header::ETAG,
            HeaderName::from_static("idempotent-replayed"),
            crate::REQUEST_ID,
            header::RETRY_AFTER,
        ])
        .max_age(PREFLIGHT_MAX_AGE)
}
