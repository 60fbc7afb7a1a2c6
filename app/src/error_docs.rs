//! The error body and the error responses in the OpenAPI description, for
//! both doors (HTTP routes and socket handshakes).
//!
//! The body's schema is written by hand beside the type that renders it:
//! [`ApiError`] builds its body as a JSON map (an error may carry members of
//! its own), not from a struct a schema could be derived from.

use std::borrow::Cow;
use std::collections::BTreeMap;

use utoipa::openapi::header::Header;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
use utoipa::openapi::{Content, KnownFormat, Ref, RefOr, Schema, SchemaFormat};
use utoipa::{IntoResponses, PartialSchema, ToResponse, ToSchema};

use crate::ApiError;

/// The codes in use, each with what it means. New ones may be added; these
/// keep their meaning (the contract's rule), so the schema lists them as
/// examples, not as a closed set.
const CODES: [(&str, &str); 24] = [
    ("malformed_json", "400: the body is not JSON"),
    (
        "invalid_header",
        "400: a header's value does not fit (`field` names it)",
    ),
    ("bad_request", "400: a request the server could not read"),
    (
        "not_a_websocket",
        "400: a socket handshake without the upgrade headers",
    ),
    (
        "unauthenticated",
        "401: no token, or a bad, expired or revoked one",
    ),
    (
        "forbidden",
        "403: not a member, not an admin, or a page's origin not allowed",
    ),
    (
        "wrong_password",
        "403: `current_password` is not the account's",
    ),
    (
        "not_found",
        "404: no such resource (or route, or a path id that is no UUID)",
    ),
    ("method_not_allowed", "405: the route has no such method"),
    ("username_taken", "409"),
    ("project_key_taken", "409"),
    ("already_member", "409"),
    ("last_admin", "409: the last admin may not leave"),
    (
        "version_conflict",
        "409: `If-Match` is stale (`current_version`)",
    ),
    (
        "contended",
        "409: the project changed while the request ran; retry",
    ),
    (
        "idempotency_in_progress",
        "409: a request with this key still runs",
    ),
    ("payload_too_large", "413: the body exceeds 1 MiB"),
    (
        "headers_too_large",
        "431: headers exceed 64 KiB or 100 fields",
    ),
    (
        "invalid_field",
        "422: a field or query parameter does not fit (`field` names it)",
    ),
    (
        "idempotency_key_reused",
        "422: the key was used for another request",
    ),
    (
        "rate_limited",
        "429: too many requests; retry after `Retry-After` seconds",
    ),
    (
        "projection_lagging",
        "503: `X-Min-Position` not reached in 5 s (`current_position`)",
    ),
    (
        "dependency_unavailable",
        "503: the database or broker is down; retry",
    ),
    ("internal", "500: a fault of the server's"),
];

impl PartialSchema for ApiError {
    fn schema() -> RefOr<Schema> {
        let codes: Vec<String> = CODES
            .iter()
            .map(|(code, meaning)| format!("- `{code}`: {meaning}"))
            .collect();
        let code = ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(format!("What went wrong:\n{}", codes.join("\n"))))
            .examples(CODES.iter().map(|(code, _)| *code));
        let error = ObjectBuilder::new()
            .property("code", code)
            .required("code")
            .property("message", text("For people: what to change"))
            .required("message")
            .property("field", text("The field, parameter or header at fault"))
            .property(
                "current_version",
                integer("`version_conflict`: the ticket's version"),
            )
            .property(
                "current_position",
                integer("`projection_lagging`: the position the read models have applied"),
            )
            .additional_properties(Some(AdditionalProperties::FreeForm(true)));
        ObjectBuilder::new()
            .description(Some("The contract's error body"))
            .property("error", error)
            .required("error")
            .into()
    }
}

impl ToSchema for ApiError {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Error")
    }
}

fn text(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
}

fn integer(description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .description(Some(description))
}

/// The error responses, one per status, as components of the description:
/// status, component name, and when it is answered.
const REFUSALS: [(u16, &str, &str); 9] = [
    (
        400,
        "BadRequest",
        "Malformed: the body is not JSON (`malformed_json`), a header's value does not fit \
         (`invalid_header`: `If-Match`, `Idempotency-Key`, `X-Min-Position`), or a socket \
         handshake has a bad `since` (`invalid_field`) or no upgrade (`not_a_websocket`)",
    ),
    (
        401,
        "Unauthenticated",
        "No bearer token, or an invalid, expired or revoked one (`unauthenticated`)",
    ),
    (
        403,
        "Forbidden",
        "The caller may not do this: not a member, not an admin (`forbidden`)",
    ),
    (
        404,
        "NotFound",
        "No such resource, or not one the caller can see (`not_found`)",
    ),
    (
        409,
        "Conflict",
        "The request conflicts with the current state (`version_conflict`, `username_taken`, \
         `project_key_taken`, `already_member`, `last_admin`, `contended`), or a request with \
         the same `Idempotency-Key` is still running (`idempotency_in_progress`)",
    ),
    (
        413,
        "PayloadTooLarge",
        "The body exceeds 1 MiB (`payload_too_large`)",
    ),
    (
        422,
        "Unprocessable",
        "A field of the body or a query parameter is missing, of the wrong type, unknown or out \
         of range (`invalid_field`, naming it in `field`), or the `Idempotency-Key` was used for \
         another request (`idempotency_key_reused`)",
    ),
    (
        429,
        "RateLimited",
        "Too many requests (`rate_limited`): retry after `Retry-After` seconds",
    ),
    (
        503,
        "Unavailable",
        "A dependency is down (`dependency_unavailable`), or the read models did not reach \
         `X-Min-Position` within 5 s (`projection_lagging`, with `current_position`); retry",
    ),
];

/// The error response of `STATUS`, referenced from an operation's
/// `responses(...)` as `Refused<404>`; a status without one does not compile.
pub struct Refused<const STATUS: u16>;

impl<const STATUS: u16> Refused<STATUS> {
    const INDEX: usize = refusal_index(STATUS);
}

const fn refusal_index(status: u16) -> usize {
    let mut i = 0;
    while i < REFUSALS.len() {
        if REFUSALS[i].0 == status {
            return i;
        }
        i += 1;
    }
    panic!("no error response is described for this status");
}

impl<'r, const STATUS: u16> ToResponse<'r> for Refused<STATUS> {
    fn response() -> (&'r str, RefOr<Response>) {
        refusal(Self::INDEX)
    }
}

impl<const STATUS: u16> IntoResponses for Refused<STATUS> {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let (name, _) = refusal(Self::INDEX);
        BTreeMap::from([(STATUS.to_string(), Ref::from_response_name(name).into())])
    }
}

/// Every error response, for the description's components.
pub fn refusals() -> impl Iterator<Item = (&'static str, RefOr<Response>)> {
    (0..REFUSALS.len()).map(refusal)
}

fn refusal(index: usize) -> (&'static str, RefOr<Response>) {
    let (status, name, description) = REFUSALS[index];
    let body = Content::new(Some(Ref::from_schema_name(ApiError::name())));
    let mut response = ResponseBuilder::new()
        .description(description)
        .content("application/json", body);
    if status == 429 {
        let seconds = Header::builder()
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0)),
            ))
            .description(Some("Seconds to wait before retrying"))
            .build();
        response = response.header("Retry-After", seconds);
    }
    (name, response.build().into())
}
