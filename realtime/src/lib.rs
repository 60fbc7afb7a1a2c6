//! The realtime gateway: `/ws/notifications/`, `/ws/projects/{pid}/tickets/`
//! and `/ws/projects/{pid}/presence/` ([`presence`]).
//!
//! Messages are rendered and stored by the projections (so every gateway
//! instance, and every replay, sends the same bytes with the same `seq`) and
//! announced on core NATS; each process subscribes once ([`listener`]) and
//! fans out in memory ([`hub`]); each socket replays what it missed from the
//! store and then follows live ([`session`]); a message stored but never
//! published still reaches it within a second ([`head_check`]). Every socket is admitted by one
//! handshake (`handshake`: token, project, membership, `since`), and both
//! kinds of session share the socket plumbing (`socket`: keepalive, writes
//! with a deadline, closing). What they do is counted in [`metrics`].

pub mod close_codes;
mod handshake;
pub mod head_check;
pub mod hub;
pub mod listener;
pub mod metrics;
pub mod presence;
mod session;
mod socket;

pub use socket::Timing;

/// What clients send, parsed as the sockets parse it, without a server: the
/// handshake's `since`, channel and presence messages. Public for the fuzz
/// targets (`fuzz/`).
pub mod input {
    pub use crate::handshake::parse_since;
    pub use crate::presence::{parse_presence, PresenceMessage};
    pub use crate::session::reply_to;
}

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ticketflow_app::error_docs::Refused;
use ticketflow_app::{ApiError, AppState, Drain};
use ticketflow_nats::{Broker, BusError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::close_codes::SERVICE_RESTART;
use crate::handshake::{Door, Handshake, Opening};
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::presence::Presence;

#[derive(Clone)]
pub struct Gateway {
    /// Authentication, membership and the read models' connections.
    pub app: AppState,
    /// This process's sockets, by channel.
    pub hub: Arc<Hub>,
    /// The most messages one replay sends before asking for a resync.
    pub replay_limit: i64,
    /// Who is online, across instances.
    pub presence: Arc<Presence>,
    /// Server pings and the idle limit.
    pub timing: Timing,
    /// What the sockets count, registered once for all of them.
    pub metrics: Arc<Metrics>,
}

/// Settings of a gateway instance.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Messages queued per socket before it is closed with 4008.
    pub queue_limit: usize,
    /// The most messages one replay sends before asking for a resync.
    pub replay_limit: i64,
    pub timing: Timing,
}

impl Gateway {
    /// Starts a gateway instance: its bus listener and presence tasks (they
    /// run until their handles are aborted) and the state its routes share.
    pub async fn start(
        app: AppState,
        broker: Broker,
        settings: Settings,
    ) -> Result<(Self, Vec<JoinHandle<()>>), BusError> {
        let hub = if broker.pubsub.filters() {
            Hub::fed_by(settings.queue_limit, broker.clone())
        } else {
            Hub::new(settings.queue_limit)
        };
        let metrics = Arc::new(Metrics::register());
        let listening = tokio::spawn(listener::run(hub.clone(), broker.clone()));
        let (presence, presence_task) = Presence::start(broker, settings.queue_limit).await?;
        let checking = tokio::spawn(head_check::run(hub.clone(), app.reads.clone()));
        let drain = app.drain.clone();
        let closing = tokio::spawn(close_on_drain(drain, hub.clone(), presence.clone()));
        let tasks = vec![listening, tokio::spawn(presence_task), checking, closing];
        let gateway = Self {
            app,
            hub,
            replay_limit: settings.replay_limit,
            presence,
            timing: settings.timing,
            metrics,
        };
        Ok((gateway, tasks))
    }
}

/// Closes every socket with 1012 once the process drains, so its clients
/// resume on another instance. A socket registering after this sees the
/// drain itself (the sessions look once registered).
async fn close_on_drain(drain: Drain, hub: Arc<Hub>, presence: Arc<Presence>) {
    drain.begun().await;
    hub.close_all(SERVICE_RESTART);
    presence.close_all(SERVICE_RESTART);
}

/// The gateway's routes and tasks, at once even while its broker is not
/// reachable (NATS coming up after the API): handshakes then answer 503
/// `dependency_unavailable` until the broker is connected and the gateway
/// started, by the task returned (aborting it stops the gateway's tasks too).
pub fn start_when_connected(
    app: AppState,
    broker: Broker,
    settings: Settings,
) -> (Router, JoinHandle<()>) {
    let (slot, started) = watch::channel(None);
    let starting = tokio::spawn(start_into(slot, app, broker, settings));
    (routes(started), starting)
}

/// The gateway once started.
type Started = watch::Receiver<Option<Gateway>>;

/// How often a gateway waiting for its broker looks again.
const BROKER_POLL: Duration = Duration::from_millis(100);
/// How long a handshake waits for a gateway being started (a broker
/// connection still being made) before it is refused.
const START_GRACE: Duration = Duration::from_secs(2);

async fn start_into(
    slot: watch::Sender<Option<Gateway>>,
    app: AppState,
    broker: Broker,
    settings: Settings,
) {
    let tasks = loop {
        if broker.pubsub.connected() {
            match Gateway::start(app.clone(), broker.clone(), settings).await {
                Ok((gateway, tasks)) => {
                    slot.send_replace(Some(gateway));
                    break tasks;
                }
                Err(e) => tracing::warn!(error = %e, "cannot start the gateway yet; retrying"),
            }
        }
        tokio::time::sleep(BROKER_POLL).await;
    };
    tracing::info!("realtime gateway started");
    // Held until this task is aborted, which aborts them.
    let _tasks = AbortOnDrop(tasks);
    std::future::pending::<()>().await
}

struct AbortOnDrop(Vec<JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.iter().for_each(JoinHandle::abort);
    }
}

/// The sockets' handshakes, each registered with its `#[utoipa::path]`
/// (the paths without the trailing slash are the same handshakes).
fn operations() -> OpenApiRouter<Started> {
    OpenApiRouter::new()
        .routes(routes!(notifications))
        .route("/ws/notifications", get(notifications))
        .routes(routes!(tickets))
        .route("/ws/projects/{pid}/tickets", get(tickets))
        .routes(routes!(presence))
        .route("/ws/projects/{pid}/presence", get(presence))
}

fn routes(started: Started) -> Router {
    operations().with_state(started).split_for_parts().0
}

/// The OpenAPI description of the handshakes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    operations().into_openapi()
}

/// The started gateway, or the 503 a handshake gets before, and once the
/// process drains.
async fn gateway(mut started: Started) -> Result<Gateway, Response> {
    let status = StatusCode::SERVICE_UNAVAILABLE;
    let ready = tokio::time::timeout(START_GRACE, started.wait_for(Option::is_some)).await;
    if let Ok(Ok(started)) = ready {
        match started.as_ref() {
            Some(gateway) if gateway.app.drain.has_begun() => {
                let message = "this instance is shutting down; connect to another";
                let refused = ApiError::new(status, "shutting_down", message);
                return Err(refused.into_response());
            }
            Some(gateway) => return Ok(gateway.clone()),
            None => {}
        }
    }
    let message = "live messages are not available yet; retry shortly";
    Err(ApiError::new(status, "dependency_unavailable", message).into_response())
}

/// Opens the caller's notification channel.
///
/// A WebSocket handshake (RFC 6455), also at `/ws/notifications`. The
/// socket gets `connection_established`, the messages after `since`, then
/// live ones.
#[utoipa::path(
    get, path = "/ws/notifications/", tag = "realtime", operation_id = "notifications_socket",
    params(Handshake),
    security(("bearer" = []), ()),
    responses(
        (status = 101, description = "Switching Protocols: the socket is open"),
        Refused<400>, Refused<401>, Refused<403>, Refused<429>, Refused<503>,
    ),
)]
async fn notifications(State(started): State<Started>, opening: Opening) -> Response {
    match gateway(started).await {
        Ok(gateway) => opening.open(gateway, Door::Notifications).await,
        Err(refused) => refused,
    }
}

/// Opens the project's ticket channel (ticket and comment changes).
///
/// A WebSocket handshake (RFC 6455), also at `/ws/projects/{pid}/tickets`.
/// The socket gets `connection_established`, the messages after `since`,
/// then live ones.
#[utoipa::path(
    get, path = "/ws/projects/{pid}/tickets/", tag = "realtime", operation_id = "tickets_socket",
    params(("pid" = uuid::Uuid, Path, description = "The project's id"), Handshake),
    security(("bearer" = []), ()),
    responses(
        (status = 101, description = "Switching Protocols: the socket is open"),
        Refused<400>, Refused<401>, Refused<403>, Refused<404>, Refused<429>, Refused<503>,
    ),
)]
async fn tickets(
    State(started): State<Started>,
    pid: Result<Path<String>, PathRejection>,
    opening: Opening,
) -> Response {
    let pid = project_segment(pid);
    match gateway(started).await {
        Ok(gateway) => opening.open(gateway, Door::Tickets { pid: &pid }).await,
        Err(refused) => refused,
    }
}

/// Joins the project's presence: who is online, viewing, typing.
///
/// A WebSocket handshake (RFC 6455), also at
/// `/ws/projects/{pid}/presence`; `since` is ignored (presence has no
/// history).
#[utoipa::path(
    get, path = "/ws/projects/{pid}/presence/", tag = "realtime",
    operation_id = "presence_socket",
    params(("pid" = uuid::Uuid, Path, description = "The project's id"), Handshake),
    security(("bearer" = []), ()),
    responses(
        (status = 101, description = "Switching Protocols: the socket is open"),
        Refused<400>, Refused<401>, Refused<403>, Refused<404>, Refused<429>, Refused<503>,
    ),
)]
async fn presence(
    State(started): State<Started>,
    pid: Result<Path<String>, PathRejection>,
    opening: Opening,
) -> Response {
    let pid = project_segment(pid);
    match gateway(started).await {
        Ok(gateway) => opening.open(gateway, Door::Presence { pid: &pid }).await,
        Err(refused) => refused,
    }
}

/// The project id as the path gives it; one that does not even decode
/// names no project, which the handshake answers with its 404.
fn project_segment(pid: Result<Path<String>, PathRejection>) -> String {
    pid.map(|Path(pid)| pid).unwrap_or_default()
}
