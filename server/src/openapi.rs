//! The OpenAPI description of a ticketflow process, served at
//! `/api/openapi.json` (see [`ticketflow_api::docs`]): the API's routes, the
//! sockets' handshakes and the process's own (health, metrics), each
//! generated from its handler's annotation where its route is registered. It describes the service whatever roles
//! this process runs, and is built once.

use std::sync::LazyLock;

use utoipa::openapi::OpenApi;

static SPEC: LazyLock<OpenApi> = LazyLock::new(|| {
    let mut spec = ticketflow_api::openapi();
    spec.merge(ticketflow_realtime::openapi());
    spec.merge(crate::health::openapi());
    spec.merge(crate::metrics::openapi());
    spec.info.version = env!("CARGO_PKG_VERSION").to_string();
    spec
});

/// The description, built on first use.
pub fn spec() -> &'static OpenApi {
    &SPEC
}
