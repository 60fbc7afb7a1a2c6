//! `X-Min-Position`: a GET waits (at most 5 s) until what it reads from has
//! applied the given global position, so a client reads its own writes.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use crate::error::ApiError;
use crate::AppState;

const HEADER: &str = "x-min-position";
const MAX_WAIT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(10);

pub async fn min_position(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::GET {
        return next.run(req).await;
    }
    let Some(raw) = req.headers().get(HEADER) else {
        return next.run(req).await;
    };
    let Some(wanted) = raw.to_str().ok().and_then(|s| s.trim().parse::<i64>().ok()) else {
        return ApiError::bad_header("X-Min-Position", "X-Min-Position must be an integer")
            .into_response();
    };
    match wait_for(&state, wanted).await {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// Reads come from the event store for now, so "applied" means committed.
async fn wait_for(state: &AppState, wanted: i64) -> Result<(), ApiError> {
    let deadline = Instant::now() + MAX_WAIT;
    loop {
        let current = state.events.head_position().await?;
        if current >= wanted {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "projection_lagging",
                format!("position {wanted} is not applied yet"),
            )
            .with("current_position", current));
        }
        tokio::time::sleep(POLL).await;
    }
}
