//! The API's description where clients and people find it: the OpenAPI
//! document at `/api/openapi.json` (serialised once, when the router is
//! built), and Swagger UI at `/api/docs`, whose assets are compiled into the
//! binary (the `vendored` build of `utoipa-swagger-ui`), so it works without
//! internet.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Router;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::{Config, SwaggerUi};

/// Where the OpenAPI document is served.
pub const SPEC_PATH: &str = "/api/openapi.json";
/// Where the docs UI is served (`/api/docs/` and its assets below).
pub const UI_PATH: &str = "/api/docs";

/// The OpenAPI 3.1 description of this API, as JSON.
#[utoipa::path(
    get, path = "/api/openapi.json", tag = "operations", operation_id = "openapi",
    responses((status = 200, description = "This document", body = serde_json::Value)),
)]
async fn description(State(json): State<Bytes>) -> Response {
    let json_type = HeaderValue::from_static("application/json");
    ([(header::CONTENT_TYPE, json_type)], json).into_response()
}

fn operations() -> OpenApiRouter<Bytes> {
    OpenApiRouter::new().routes(routes!(description))
}

/// The description of the document's own route.
pub fn openapi() -> utoipa::openapi::OpenApi {
    operations().into_openapi()
}

/// Serves `spec` and the docs UI that shows it.
pub fn router(spec: &utoipa::openapi::OpenApi) -> Result<Router, serde_json::Error> {
    let json = Bytes::from(serde_json::to_vec(spec)?);
    let (document, _) = operations().with_state(json).split_for_parts();
    // No validator badge: it would send the document to an outside service.
    let config = Config::new([SPEC_PATH]).validator_url("none");
    let ui = SwaggerUi::new(UI_PATH).config(config);
    Ok(document.merge(ui))
}
