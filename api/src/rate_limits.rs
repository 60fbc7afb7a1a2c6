//! The HTTP side of the rate limits ([`ticketflow_app::rate_limits`]):
//! commands per client address and per user, the auth routes per address.
//! Login attempts per username are counted where the username is read
//! (`auth`). A refused request reaches no handler: 429 `rate_limited`
//! with `Retry-After`, and nothing done.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ticketflow_app::{bearer, AppState};

/// What a request under `/api` counts as.
enum Counted {
    /// Register, login, refresh, logout, password change.
    Auth,
    /// Any other POST, PATCH or DELETE.
    Command,
}

/// The middleware, inside the `/api` router (paths without `/api`).
pub async fn limit_requests(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(counted) = counted(req.method(), req.uri().path()) else {
        return next.run(req).await;
    };
    let limits = &state.limits;
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| *peer);
    let ip = limits.client_ip(peer, req.headers());
    let checked = match counted {
        Counted::Auth => limits.auth(ip),
        Counted::Command => {
            // A caller whose token fails is not counted as a user; the
            // handler refuses it.
            let caller = limits
                .limits_users_commands()
                .then(|| bearer(req.headers()).and_then(|t| state.authenticate(t).ok()))
                .flatten();
            let checked = limits.command(ip, caller.as_ref().map(|c| c.id));
            // Checked once: the handler's extractor takes it from here.
            if let Some(caller) = caller {
                req.extensions_mut().insert(caller);
            }
            checked
        }
    };
    match checked {
        Ok(()) => next.run(req).await,
        Err(refused) => {
            tracing::debug!(error = %refused.message, "rate limited");
            refused.into_response()
        }
    }
}

fn counted(method: &Method, path: &str) -> Option<Counted> {
    if path.starts_with("/auth/") {
        return Some(Counted::Auth);
    }
    is_command(method, path).then_some(Counted::Command)
}

/// Whether a request under `/api` is a command: a POST, PATCH or DELETE
/// other than the auth routes (which change no event log and hold
/// credentials).
pub fn is_command(method: &Method, path: &str) -> bool {
    matches!(*method, Method::POST | Method::PATCH | Method::DELETE) && !path.starts_with("/auth/")
}
