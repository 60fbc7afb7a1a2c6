//! The description of the process's routes outside `/api` (`GET /healthz`,
//! `GET /readyz`, `GET /metrics`), written with builders: their handlers
//! (`crate::health`, the metrics exporter) answer outside the API's
//! annotated routers. The route-coverage test (`server/tests/openapi.rs`)
//! holds the two together.

use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
use utoipa::openapi::{Content, OpenApi, OpenApiBuilder, PathsBuilder, RefOr, Schema};

/// `/healthz`, `/readyz` and `/metrics`.
pub fn openapi() -> OpenApi {
    let paths = PathsBuilder::new()
        .path("/healthz", get("healthz", "The process is up", healthz()))
        .path("/readyz", get("readyz", READYZ, readyz()))
        .path("/metrics", get("metrics", METRICS, metrics()));
    OpenApiBuilder::new().paths(paths).build()
}

const READYZ: &str = "Whether this process's dependencies answer and, for the roles it runs, \
    its lag is under the threshold: 200 when ready, 503 otherwise, each check named";

const METRICS: &str = "The process's metrics in the Prometheus text format";

fn get(operation_id: &str, summary: &str, responses: OperationBuilder) -> PathItem {
    let operation = responses
        .tag("operations")
        .operation_id(Some(operation_id))
        .summary(Some(summary));
    PathItem::new(HttpMethod::Get, operation)
}

fn healthz() -> OperationBuilder {
    let status = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["ok"]));
    let body = ObjectBuilder::new()
        .property("status", status)
        .required("status");
    OperationBuilder::new().response("200", json("Up", body))
}

fn readyz() -> OperationBuilder {
    let ready = json("Ready: every check passed", readiness());
    let not_ready = json("Not ready, or draining for a shutdown", readiness());
    OperationBuilder::new()
        .response("200", ready)
        .response("503", not_ready)
}

/// `{"status": "ready"|"not_ready"|"draining", "checks": {name: {"ok", ...}}}`.
fn readiness() -> ObjectBuilder {
    let status = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["ready", "not_ready", "draining"]));
    let check = ObjectBuilder::new()
        .property("ok", ObjectBuilder::new().schema_type(Type::Boolean))
        .required("ok")
        .additional_properties(Some(AdditionalProperties::FreeForm(true)));
    let checks = ObjectBuilder::new()
        .description(Some(
            "Each check by name (database, broker, lag of a role, ...)",
        ))
        .additional_properties(Some(check));
    ObjectBuilder::new()
        .property("status", status)
        .required("status")
        .property("checks", checks)
        .required("checks")
}

fn metrics() -> OperationBuilder {
    let text = ObjectBuilder::new().schema_type(Type::String);
    let response = ResponseBuilder::new()
        .description("Prometheus text exposition format 0.0.4")
        .content("text/plain", Content::new(Some(text)));
    OperationBuilder::new().response("200", response.build())
}

fn json(description: &str, body: ObjectBuilder) -> RefOr<utoipa::openapi::Response> {
    let body: RefOr<Schema> = body.into();
    ResponseBuilder::new()
        .description(description)
        .content("application/json", Content::new(Some(body)))
        .build()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_the_three_process_routes_beside_the_api() {
        let described = openapi();
        let paths: Vec<_> = described.paths.paths.keys().cloned().collect();
        assert_eq!(paths, ["/healthz", "/readyz", "/metrics"]);
        let spec = super::super::spec();
        let others = ticketflow_api::openapi().paths.paths.len()
            + ticketflow_realtime::openapi().paths.paths.len();
        assert_eq!(
            spec.paths.paths.len(),
            others + 3,
            "the process's spec holds them, and no path of the API's is replaced"
        );
        let json = serde_json::to_value(spec).expect("serialises");
        let readyz = &json["paths"]["/readyz"]["get"]["responses"];
        assert!(readyz["503"]["content"]["application/json"]["schema"].is_object());
    }
}
