//! Request extractors that refuse bad input in the contract's error format.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use serde_path_to_error::Segment;
use ticketflow_app::params;
use ticketflow_app::wording::{self, Input};
use ticketflow_app::ApiError;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::IntoParams;

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
    // Every body of the API is an object; serde would read an array into a
    // struct field by field and complain about its items instead.
    let Value::Object(fields) = &value else {
        let found = wording::describe(&value);
        return Err(ApiError::invalid(
            "body",
            format!("body must be a JSON object, got {found}"),
        ));
    };
    if let Some(field) = field_with_nul(fields) {
        return Err(ApiError::invalid(
            &field,
            format!("{field} must not contain the character U+0000"),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let found = value_at(&value, e.path());
        let said = wording::reword(&serde_message(e.inner()), &path, found, Input::Body);
        ApiError::invalid(&said.field, said.message)
    })
}

/// serde's own message, without serde_json's "at line 1 column 9".
fn serde_message(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let position = format!(" at line {} column {}", e.line(), e.column());
    message
        .strip_suffix(&position)
        .unwrap_or(&message)
        .to_string()
}

/// The value a deserialisation error is about, when its path leads to one.
fn value_at<'v>(value: &'v Value, path: &serde_path_to_error::Path) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, segment| match segment {
        Segment::Seq { index } => v.get(index),
        Segment::Map { key } => v.get(key),
        _ => None,
    })
}

/// The top-level field holding a U+0000 anywhere inside it. PostgreSQL text
/// cannot store that character, so such a string would otherwise fail only at
/// the database, as a 5xx for what is bad input.
fn field_with_nul(fields: &Map<String, Value>) -> Option<String> {
    fields
        .iter()
        .find(|(name, v)| name.contains('\0') || contains_nul(v))
        .map(|(name, _)| name.replace('\0', ""))
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

/// Query parameters, as text each: replaces axum's `Query`, whose
/// plain-text rejection would break the error format (see
/// [`params::parse_query`]).
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        params::parse_query(parts.uri.query()).map(Self)
    }
}

/// `If-Match: "<version>"` (or a weak `W/"<version>"`), if present.
pub struct IfMatch(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parse_if_match(&parts.headers).map(Self)
    }
}

impl IntoParams for IfMatch {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let version = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(r#"^(W/)?"[0-9]+"$"#));
        let meaning = "The ticket version the change is meant for (its `ETag`): a stale one \
            is refused with 409 `version_conflict`";
        vec![crate::openapi::header(IF_MATCH, meaning, version)]
    }
}

const IF_MATCH: &str = "If-Match";

/// The version the `If-Match` header names, if there is one.
pub fn parse_if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    const NAME: &str = IF_MATCH;
    let Some(text) = params::header_text(headers, NAME)? else {
        return Ok(None);
    };
    let quoted = text.strip_prefix("W/").unwrap_or(text);
    let version = quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .and_then(|v| params::integer(NAME, v, params::NON_NEGATIVE).ok());
    match version {
        Some(v) => Ok(Some(v as u64)),
        None => Err(ApiError::bad_header(
            NAME,
            "If-Match must be a quoted version, e.g. \"3\"",
        )),
    }
}
