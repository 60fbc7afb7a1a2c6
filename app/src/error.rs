//! The contract's error body, `{"error": {"code", "message", ...}}`, and the
//! mapping from every lower-level error onto it.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use ticketflow_domain::DomainError;
use ticketflow_store::StoreError;
use uuid::Uuid;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra members of the `error` object (`field`, `current_version`, ...).
    pub extra: Map<String, Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            extra: Map::new(),
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_string(), value.into());
        self
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message).with("field", field)
    }

    pub fn malformed_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_json", message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body exceeds 1 MiB",
        )
    }

    pub fn bad_header(name: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_header", message).with("field", name)
    }

    /// 429 `rate_limited`: too many of `what` ("commands from this
    /// account"); the next would pass in `wait`, which the body gives in
    /// `retry_after_ms` and the response in `Retry-After`.
    pub fn rate_limited(what: &str, wait: Duration) -> Self {
        let ms = retry_after_ms(wait);
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many {what}; retry in {} s", whole_seconds(ms)),
        )
        .with(RETRY_AFTER_MS, ms)
    }

    pub fn version_conflict(current: u64) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "version_conflict",
            format!("the ticket is at version {current}"),
        )
        .with("current_version", current)
    }
}

/// The member of the `error` object that says when to retry.
const RETRY_AFTER_MS: &str = "retry_after_ms";

/// A wait in whole milliseconds, rounded up, at least 1.
pub fn retry_after_ms(wait: Duration) -> u64 {
    wait.as_micros().div_ceil(1000).max(1) as u64
}

/// Milliseconds as `Retry-After`'s whole seconds: rounded up, at least 1.
fn whole_seconds(ms: u64) -> u64 {
    ms.div_ceil(1000).max(1)
}

impl IntoResponse for ApiError {
    /// The error body; an error that says when to retry says it in
    /// `Retry-After` too, the header clients and proxies know.
    fn into_response(self) -> Response {
        let retry_after = self.extra.get(RETRY_AFTER_MS).and_then(Value::as_u64);
        let mut error = Map::new();
        error.insert("code".into(), self.code.into());
        error.insert("message".into(), self.message.into());
        error.extend(self.extra);
        let mut response = (self.status, axum::Json(json!({ "error": error }))).into_response();
        if let Some(ms) = retry_after {
            let seconds = HeaderValue::from(whole_seconds(ms));
            response.headers_mut().insert(header::RETRY_AFTER, seconds);
        }
        response
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let message = e.to_string();
        match e {
            DomainError::Invalid { field, .. } => Self::invalid(field, message),
            DomainError::NotFound { .. } => Self::new(StatusCode::NOT_FOUND, "not_found", message),
            DomainError::Forbidden(_) => Self::forbidden(message),
            DomainError::Conflict { code, .. } => Self::new(StatusCode::CONFLICT, code, message),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::VersionConflict { current } => Self::version_conflict(current),
            StoreError::ProjectMoved { .. } => Self::new(
                StatusCode::CONFLICT,
                "contended",
                "the project changed while this request ran; retry",
            ),
            StoreError::Taken("username") => {
                Self::new(StatusCode::CONFLICT, "username_taken", "username is taken")
            }
            StoreError::Taken("project_key") => Self::new(
                StatusCode::CONFLICT,
                "project_key_taken",
                "project key is taken",
            ),
            StoreError::Taken(what) => {
                Self::new(StatusCode::CONFLICT, "conflict", format!("{what} is taken"))
            }
            StoreError::Unavailable(detail) => {
                tracing::error!(%detail, "store unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "dependency_unavailable",
                    "the database is unavailable; retry later",
                )
            }
            StoreError::Corrupt(detail) => {
                tracing::error!(%detail, "stored data could not be decoded");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "stored data is unreadable",
                )
            }
        }
    }
}

/// An id from a path; anything that is not a UUID names nothing (404).
pub fn path_id(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_round_up_to_whole_units() {
        assert_eq!(retry_after_ms(Duration::from_micros(1)), 1);
        assert_eq!(retry_after_ms(Duration::ZERO), 1);
        assert_eq!(retry_after_ms(Duration::from_micros(2500)), 3);
        assert_eq!(whole_seconds(1), 1);
        assert_eq!(whole_seconds(1000), 1);
        assert_eq!(whole_seconds(1001), 2);
    }

    #[test]
    fn a_rate_limit_refusal_carries_retry_after() {
        let response = ApiError::rate_limited("tries", Duration::from_millis(1500)).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    }
}
