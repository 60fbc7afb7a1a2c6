//! The frame of the OpenAPI description: its info and tags, the bearer
//! scheme, the error body and responses; the refusals operations share; the
//! response headers they document. The operations themselves come from the
//! handlers' `#[utoipa::path]`, registered with their routes (see
//! [`crate::router`]).

use std::collections::BTreeMap;

use ticketflow_app::error_docs::{refusals, Refused};
use ticketflow_app::ApiError;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::response::Response;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::openapi::Required;
use utoipa::{IntoResponses, Modify, OpenApi};

/// Name of the bearer scheme: operations say `security(("bearer" = []))`.
const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ticketflow",
        description = "An event-sourced ticketing backend: the HTTP API and the WebSocket \
            handshakes of its realtime channels. Every error answers with the `Error` body. \
            Command responses carry `X-Position`; reads accept `X-Min-Position` to read their \
            own writes. The messages on an open socket are described in the wire contract \
            (CONTRACT.md, WebSockets)."
    ),
    tags(
        (name = "auth", description = "Accounts, tokens and sessions"),
        (name = "projects", description = "Projects, their members and announcements"),
        (name = "tickets", description = "Tickets, comments, history and the events feed"),
        (name = "notifications", description = "The caller's notifications"),
        (name = "audit", description = "The event log's hash chain"),
        (name = "realtime", description = "WebSocket handshakes (GET with Upgrade)"),
        (name = "operations", description = "Health, readiness, metrics, this description"),
    ),
    components(schemas(ApiError)),
    modifiers(&Frame),
)]
pub struct ApiDoc;

/// Adds what the derive cannot say: the bearer scheme and the error
/// responses (one per status, see [`Refused`]).
struct Frame;

impl Modify for Frame {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = Http::builder()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some(
                "An access token from login, refresh or a password change (15 minutes)",
            ))
            .build();
        components.add_security_scheme(BEARER, SecurityScheme::Http(bearer));
        components
            .responses
            .extend(refusals().map(|(name, response)| (name.to_string(), response)));
    }
}

/// The refusals any authenticated GET may answer: a bad `X-Min-Position`
/// (400), no valid token (401), a dependency down or the read models behind
/// (503).
pub struct Reads;

impl IntoResponses for Reads {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        merged([
            Refused::<400>::responses(),
            Refused::<401>::responses(),
            Refused::<503>::responses(),
        ])
    }
}

/// The refusals any authenticated command may answer, beyond its own:
/// malformed (400), no valid token (401), a keyed twin still running (409),
/// too large (413), an invalid field or a reused key (422), rate limited
/// (429), a dependency down (503).
pub struct Writes;

impl IntoResponses for Writes {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        merged([
            Refused::<400>::responses(),
            Refused::<401>::responses(),
            Refused::<409>::responses(),
            Refused::<413>::responses(),
            Refused::<422>::responses(),
            Refused::<429>::responses(),
            Refused::<503>::responses(),
        ])
    }
}

/// The refusals of the routes open without a token (register, login,
/// refresh, logout): malformed (400), too large (413), invalid (422), rate
/// limited (429), a dependency down (503).
pub struct Open;

impl IntoResponses for Open {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        merged([
            Refused::<400>::responses(),
            Refused::<413>::responses(),
            Refused::<422>::responses(),
            Refused::<429>::responses(),
            Refused::<503>::responses(),
        ])
    }
}

/// One response map out of several statuses' own.
fn merged<const N: usize>(
    parts: [BTreeMap<String, RefOr<Response>>; N],
) -> BTreeMap<String, RefOr<Response>> {
    parts.into_iter().flatten().collect()
}

/// What the response headers operations name mean; [`describe_headers`]
/// writes it into the description once, rather than in every annotation.
const RESPONSE_HEADERS: [(&str, &str); 3] = [
    (
        "X-Position",
        "The global position of the command's last event: send it as `X-Min-Position` to \
         read it",
    ),
    (
        "ETag",
        "The ticket's version, quoted (`\"7\"`): send it as `If-Match`",
    ),
    (
        IDEMPOTENT_REPLAYED,
        "`true` when this is the stored response of an earlier request with the same \
         `Idempotency-Key`",
    ),
];

const IDEMPOTENT_REPLAYED: &str = "Idempotent-Replayed";

/// Completes the operations: each response header named gets its meaning,
/// and the successes of every keyed operation (one taking
/// `Idempotency-Key`) may be replays, marked `Idempotent-Replayed`.
pub fn describe_headers(doc: &mut utoipa::openapi::OpenApi) {
    for operation in doc.paths.paths.values_mut().flat_map(operations) {
        let keyed = operation.parameters.iter().flatten().any(
            |p| matches!(p, RefOr::T(p) if p.name.eq_ignore_ascii_case(crate::idempotency::HEADER)),
        );
        for (status, response) in operation.responses.responses.iter_mut() {
            let RefOr::T(response) = response else {
                continue;
            };
            if keyed && status.starts_with('2') {
                let flag = Header::new(ObjectBuilder::new().schema_type(Type::String));
                let headers = &mut response.headers;
                headers
                    .entry(IDEMPOTENT_REPLAYED.into())
                    .or_insert(flag.into());
            }
            for (name, header) in response.headers.iter_mut() {
                let meaning = RESPONSE_HEADERS.iter().find(|(n, _)| n == name);
                if let (Some((_, meaning)), RefOr::T(header)) = (meaning, header) {
                    header
                        .description
                        .get_or_insert_with(|| meaning.to_string());
                }
            }
        }
    }
}

/// An optional request header, for a manual [`utoipa::IntoParams`].
pub fn header(name: &str, description: &str, schema: ObjectBuilder) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .flatten()
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use ticketflow_domain::user::{DISPLAY_NAME_MAX, PASSWORD_MAX, PASSWORD_MIN};
    use ticketflow_domain::validate::{
        COMMENT_MAX, DESCRIPTION_MAX, LABELS_MAX, NOTICE_MESSAGE_MAX, NOTICE_TITLE_MAX,
        PROJECT_NAME_MAX, TITLE_MAX,
    };

    /// The limits annotations state (as literals: utoipa takes no constants)
    /// are the ones the domain enforces.
    #[test]
    fn described_limits_are_the_domains() {
        let doc = serde_json::to_value(crate::openapi()).expect("serialise");
        let schemas = &doc["components"]["schemas"];
        let limits = [
            ("Register", "password", "minLength", PASSWORD_MIN),
            ("Register", "password", "maxLength", PASSWORD_MAX),
            ("Register", "display_name", "maxLength", DISPLAY_NAME_MAX),
            ("ChangePassword", "new_password", "minLength", PASSWORD_MIN),
            ("ChangePassword", "new_password", "maxLength", PASSWORD_MAX),
            ("CreateProject", "name", "maxLength", PROJECT_NAME_MAX),
            ("PostAnnouncement", "title", "maxLength", NOTICE_TITLE_MAX),
            (
                "PostAnnouncement",
                "message",
                "maxLength",
                NOTICE_MESSAGE_MAX,
            ),
            ("CreateTicket", "title", "maxLength", TITLE_MAX),
            ("CreateTicket", "description", "maxLength", DESCRIPTION_MAX),
            ("CreateTicket", "labels", "maxItems", LABELS_MAX),
            ("UpdateTicket", "title", "maxLength", TITLE_MAX),
            ("UpdateTicket", "description", "maxLength", DESCRIPTION_MAX),
            ("UpdateTicket", "labels", "maxItems", LABELS_MAX),
            ("AddComment", "body", "maxLength", COMMENT_MAX),
        ];
        for (schema, field, keyword, limit) in limits {
            let stated = &schemas[schema]["properties"][field][keyword];
            assert_eq!(stated, &Value::from(limit), "{schema}.{field} {keyword}");
        }
    }
}
