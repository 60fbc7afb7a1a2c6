//! Each request's id and span, whichever route takes it (the API, the
//! socket handshakes, the web app): `X-Request-Id` is the client's when it
//! sent a fitting one, else a new UUID v7; it is echoed in the response and
//! recorded in the request's span, so every log line of the request (its
//! errors included) carries it.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::Router;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Level;
use uuid::Uuid;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest client-sent id kept: room for a UUID (36), a ULID (26) or
/// 32 hex digits, and too short for any token this server issues (refresh
/// tokens have 43 characters, access tokens hundreds), so a client that
/// mixes its headers up cannot get a credential written to the log.
const MAX_CLIENT_ID: usize = 40;

/// `router` with request ids and spans (the outermost layers: the id is
/// set before anything else answers).
pub fn traced(router: Router) -> Router {
    router
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_failure(
                    // A 5xx here is often the client's doing (an X-Min-Position far
                    // ahead); where the server needs an operator, the cause logs
                    // itself at WARN or ERROR (the store, the read models).
                    DefaultOnFailure::new().level(Level::DEBUG),
                ),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, NewRequestId))
        .layer(axum::middleware::map_request(drop_unfit_request_id))
}

/// A request's span names its id and path, not its query: a query may
/// carry a token (`?token=` is how browsers authenticate sockets, and
/// clients send it elsewhere too), and logs must never hold one. At INFO,
/// so that the lines a default filter lets through carry the id.
fn request_span<B>(req: &axum::http::Request<B>) -> tracing::Span {
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        request_id,
        method = %req.method(),
        path = req.uri().path(),
        version = ?req.version(),
    )
}

/// A new id for a request that brought none (or an unfit one).
#[derive(Clone, Copy)]
struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let id = Uuid::now_v7().hyphenated().to_string();
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// Removes a client's `X-Request-Id` unless it is one short token (see
/// [`fits`]), so that a new one is made.
async fn drop_unfit_request_id(mut req: Request) -> Request {
    let mut sent = req.headers().get_all(REQUEST_ID).iter();
    let fitting = match (sent.next(), sent.next()) {
        (None, _) => return req,
        (Some(id), None) => fits(id),
        (Some(_), Some(_)) => false,
    };
    if !fitting {
        req.headers_mut().remove(REQUEST_ID);
    }
    req
}

/// 1 to [`MAX_CLIENT_ID`] letters, digits, `-`, `_`, `.` or `:`.
fn fits(id: &HeaderValue) -> bool {
    let bytes = id.as_bytes();
    (1..=MAX_CLIENT_ID).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_tokens_are_kept() {
        let fit = |s: &str| fits(&HeaderValue::from_str(s).unwrap());
        assert!(fit("0190a6c2-7a8e-7cc4-9f3a-3c1c9a0e4b21"));
        assert!(fit("01J9ZQ3K8Y6W5X4V3T2S1R0QPN"));
        assert!(fit("req-42.retry:1"));
        assert!(!fit(""));
        assert!(!fit("has space"));
        assert!(!fit("quote\"d"));
        assert!(!fit(&"a".repeat(41)));
        // A refresh token's length (32 bytes, base64url).
        assert!(!fit(&"A".repeat(43)));
    }

    #[test]
    fn new_ids_are_uuid_v7() {
        let request = axum::http::Request::new(());
        let id = NewRequestId.make_request_id(&request).expect("an id");
        let id = Uuid::parse_str(id.header_value().to_str().unwrap()).unwrap();
        assert_eq!(id.get_version_num(), 7);
    }
}
