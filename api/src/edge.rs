//! What every request and response of a process passes through, whichever
//! route takes it: the limit on request headers, and the contract's error
//! body on the error statuses axum answers by itself (the 405 of a socket
//! route, a rejection written as plain text).

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use ticketflow_app::ApiError;

/// The most bytes of request line and headers a request may carry, and the
/// most headers. The server sets hyper's own ceilings far above them, so a
/// request over these still reaches here and gets the error body, which
/// hyper's bare 431 would not carry.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
pub const MAX_HEADERS: usize = 100;

pub async fn edge(req: Request, next: Next) -> Response {
    if req.headers().len() > MAX_HEADERS || head_bytes(&req) > MAX_HEADER_BYTES {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            "request headers exceed 64 KiB or 100 fields",
        )
        .into_response();
    }
    with_error_body(next.run(req).await)
}

/// The request line and headers as sent, to within a few bytes.
fn head_bytes(req: &Request) -> usize {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    let headers: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    req.method().as_str().len() + target + headers
}

/// An error response without a JSON body gets the contract's.
fn with_error_body(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let reason = status.canonical_reason().unwrap_or("error");
    ApiError::new(status, code(status), reason.to_lowercase()).into_response()
}

fn code(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::URI_TOO_LONG => "uri_too_long",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    }
}

#[cfg(test)]
mod tests {
    use axum::body::{to_bytes, Body};
    use serde_json::Value;

    use super::*;

    async fn body_of(response: Response) -> Value {
        let bytes = to_bytes(response.into_body(), 1 << 16).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn plain_error_responses_get_the_error_body() {
        for status in [
            StatusCode::BAD_REQUEST,
            StatusCode::METHOD_NOT_ALLOWED,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            StatusCode::INTERNAL_SERVER_ERROR,
        ] {
            let plain = (status, "Failed to deserialize the JSON body").into_response();
            let answered = with_error_body(plain);
            assert_eq!(answered.status(), status);
            let body = body_of(answered).await;
            assert_eq!(body["error"]["code"], code(status));
            assert!(body["error"]["message"].is_string());
        }
    }

    #[tokio::test]
    async fn json_and_successful_responses_pass_unchanged() {
        let json = ApiError::not_found("ticket").into_response();
        let body = body_of(with_error_body(json)).await;
        assert_eq!(body["error"]["message"], "ticket not found");
        let ok = with_error_body((StatusCode::OK, "fine").into_response());
        let bytes = to_bytes(ok.into_body(), 64).await.unwrap();
        assert_eq!(&bytes[..], b"fine");
    }

    #[test]
    fn head_bytes_counts_the_line_and_headers() {
        let req = Request::builder()
            .uri("/api/x?a=1")
            .header("x-pad", "p".repeat(100))
            .body(Body::empty())
            .unwrap();
        assert_eq!(head_bytes(&req), 3 + 10 + 5 + 100 + 4);
    }
}
