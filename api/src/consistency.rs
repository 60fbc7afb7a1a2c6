//! `X-Min-Position`: a GET waits (at most 5 s) until the read models have
//! applied the given global position, so a client reads its own writes.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use ticketflow_app::AppState;
use ticketflow_app::{params, ApiError};
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{KnownFormat, SchemaFormat};
use utoipa::IntoParams;

const HEADER: &str = "X-Min-Position";
const MAX_WAIT: Duration = Duration::from_secs(5);

/// `X-Min-Position`, in the description of every read.
pub struct MinPosition;

impl IntoParams for MinPosition {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let position = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(0));
        let meaning = "Waits (at most 5 s, else 503 `projection_lagging`) until the read \
            models have applied this global position (a command's `X-Position`)";
        vec![crate::openapi::header(HEADER, meaning, position)]
    }
}

pub async fn min_position(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::GET {
        return next.run(req).await;
    }
    let wanted = match params::header_integer(req.headers(), HEADER, params::NON_NEGATIVE) {
        Ok(Some(wanted)) => wanted,
        Ok(None) => return next.run(req).await,
        Err(e) => return e.into_response(),
    };
    match wait_for(&state, wanted).await {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// The position every read model has applied: the least of their checkpoints.
fn applied(state: &AppState, checkpoints: &std::collections::BTreeMap<String, i64>) -> i64 {
    state
        .read_models
        .iter()
        .map(|name| checkpoints.get(*name).copied().unwrap_or(0))
        .min()
        .unwrap_or(0)
}

async fn wait_for(state: &AppState, wanted: i64) -> Result<(), ApiError> {
    let mut checkpoints = state.watch.checkpoints.clone();
    let reached = checkpoints.wait_for(|c| applied(state, c) >= wanted);
    if let Ok(Ok(_)) = tokio::time::timeout(MAX_WAIT, reached).await {
        return Ok(());
    }
    let current = applied(state, &state.watch.checkpoints.borrow());
    let head = *state.watch.head.borrow();
    if wanted <= head {
        // Committed but not applied within the wait: the read models lag,
        // which an operator should see.
        tracing::warn!(
            wanted,
            head,
            applied = current,
            "read models lag behind the log"
        );
    } else {
        // A position nobody wrote yet: the client's doing.
        tracing::debug!(wanted, head, "X-Min-Position ahead of the log");
    }
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "projection_lagging",
        format!("position {wanted} is not applied yet"),
    )
    .with("current_position", current))
}
