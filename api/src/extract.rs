//! Request extractors that refuse bad input in the contract's error format.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use ticketflow_app::ApiError;

/// Largest accepted request body: exactly 1 MiB is fine, one byte more is not.
pub const MAX_BODY: usize = 1 << 20;

/// A JSON body. Unparseable → 400 `malformed_json`; a missing field, an
/// unknown field or a wrong type → 422 naming the field; too large → 413.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large()
            } else {
                ApiError::malformed_json(rejection.body_text())
            }
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::malformed_json(format!("request body is not valid JSON: {e}")))?;
    if let Some(field) = field_with_nul(&value) {
        return Err(ApiError::invalid(
            &field,
            format!("{field} must not contain the character U+0000"),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = field_of(&e);
        ApiError::invalid(&field, format!("{field}: {}", e.inner()))
    })
}

/// The top-level field holding a U+0000 anywhere inside it. PostgreSQL text
/// cannot store that character, so such a string would otherwise fail only at
/// the database, as a 5xx for what is bad input.
fn field_with_nul(value: &Value) -> Option<String> {
    match value {
        Value::Object(fields) => fields
            .iter()
            .find(|(name, v)| name.contains('\0') || contains_nul(v))
            .map(|(name, _)| name.replace('\0', "")),
        other => contains_nul(other).then(|| "body".to_string()),
    }
}

fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(fields) => fields
            .iter()
            .any(|(name, v)| name.contains('\0') || contains_nul(v)),
        _ => false,
    }
}

/// The top-level field a deserialisation error is about.
fn field_of(e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = e.path().to_string();
    let top = path.split(['.', '[']).next().unwrap_or_default();
    if !top.is_empty() && top != "?" {
        return top.to_string();
    }
    // Missing and unknown fields are reported on the enclosing object, with
    // the field's name in backticks.
    let message = e.inner().to_string();
    message.split('`').nth(1).unwrap_or("body").to_string()
}

/// A field of a PATCH body: absent, explicitly `null`, or a value.
#[derive(Debug, Default, Clone, PartialEq)]
pub enum Patch<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Option::<T>::deserialize(d)?.map_or(Patch::Null, Patch::Value))
    }
}

impl<T> Patch<T> {
    /// For fields that cannot be cleared: `null` is a wrong type.
    pub fn required(self, field: &str) -> Result<Option<T>, ApiError> {
        match self {
            Patch::Absent => Ok(None),
            Patch::Null => Err(ApiError::invalid(field, format!("{field} may not be null"))),
            Patch::Value(v) => Ok(Some(v)),
        }
    }

    /// For fields where `null` clears the value.
    pub fn nullable(self) -> Option<Option<T>> {
        match self {
            Patch::Absent => None,
            Patch::Null => Some(None),
            Patch::Value(v) => Some(Some(v)),
        }
    }
}

/// Path parameters. Replaces axum's `Path`, whose plain-text rejection would
/// break the error format: a path that does not decode names nothing (404).
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(rejection) => {
                tracing::debug!(%rejection, "undecodable path");
                Err(ApiError::not_found("resource"))
            }
        }
    }
}

/// Query parameters. Replaces axum's `Query`, whose plain-text rejection would
/// break the error format: a query that does not fit (a repeated parameter,
/// say) is a 422 naming the parameter.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => {
                let message = rejection.body_text();
                // serde names the parameter in backticks.
                let field = message.split('`').nth(1).unwrap_or("query").to_string();
                Err(ApiError::invalid(&field, message))
            }
        }
    }
}

/// `If-Match: "<version>"`, if present.
pub struct IfMatch(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(Self(None));
        };
        let text = value.to_str().unwrap_or_default().trim();
        let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
        text.parse().map(|v| Self(Some(v))).map_err(|_| {
            ApiError::bad_header("If-Match", "If-Match must be a quoted version, e.g. \"3\"")
        })
    }
}
