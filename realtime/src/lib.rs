//! The realtime gateway: `/ws/notifications/`, `/ws/projects/{pid}/tickets/`
//! and `/ws/projects/{pid}/presence/` ([`presence`]).
//!
//! Messages are rendered and stored by the projections (so every gateway
//! instance, and every replay, sends the same bytes with the same `seq`) and
//! announced on core NATS; each process subscribes once ([`listener`]) and
//! fans out in memory ([`hub`]); each socket replays what it missed from the
//! store and then follows live ([`session`]).

pub mod hub;
pub mod listener;
pub mod presence;
mod session;

pub use session::Timing;

use std::sync::Arc;

use ticketflow_nats::{Broker, BusError, Channel};
use tokio::task::JoinHandle;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use ticketflow_app::{bearer, path_id, ApiError, AppState, AuthUser};
use uuid::Uuid;

use crate::hub::Hub;
use crate::presence::{Presence, PresenceSession};
use crate::session::{refuse, Session};

/// The largest client message: 64 KiB (65,536 bytes is allowed).
const MAX_MESSAGE: usize = 64 * 1024;

/// Initial read buffer of a socket. Clients send little (pings, presence),
/// and tungstenite's 128 KiB default, zero-filled on first read, would make
/// 10,000 idle sockets cost 1.3 GB; a bigger message grows the buffer.
const READ_BUFFER: usize = 1024;

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
        let listening = tokio::spawn(listener::run(hub.clone(), broker.clone()));
        let (presence, presence_task) = Presence::start(broker, settings.queue_limit).await?;
        let tasks = vec![listening, tokio::spawn(presence_task)];
        let gateway = Self {
            app,
            hub,
            replay_limit: settings.replay_limit,
            presence,
            timing: settings.timing,
        };
        Ok((gateway, tasks))
    }
}

pub fn router(gateway: Gateway) -> Router {
    Router::new()
        .route("/ws/notifications/", get(notifications))
        .route("/ws/notifications", get(notifications))
        .route("/ws/projects/{pid}/tickets/", get(tickets))
        .route("/ws/projects/{pid}/tickets", get(tickets))
        .route("/ws/projects/{pid}/presence/", get(presence))
        .route("/ws/projects/{pid}/presence", get(presence))
        .with_state(gateway)
}

#[derive(Deserialize)]
pub struct Handshake {
    token: Option<String>,
    since: Option<String>,
}

/// The caller, by header token (which wins) or `?token=`.
fn authenticate(
    gateway: &Gateway,
    headers: &HeaderMap,
    q: &Handshake,
) -> Result<AuthUser, ApiError> {
    let token = bearer(headers)
        .or(q.token.as_deref())
        .ok_or_else(|| ApiError::unauthenticated("missing token"))?;
    gateway.app.authenticate(token)
}

fn parse_since(raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    raw.map(|s| {
        s.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_field",
                "since must be a seq",
            )
            .with("field", "since")
        })
    })
    .transpose()
}

fn upgrade(ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>, session: Session) -> Response {
    upgrade_with(ws, move |socket| session.run(socket))
}

fn upgrade_with<F, Fut>(ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>, run: F) -> Response
where
    F: FnOnce(axum::extract::ws::WebSocket) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    match ws {
        Ok(ws) => ws
            .max_message_size(MAX_MESSAGE)
            .max_frame_size(MAX_MESSAGE)
            .read_buffer_size(READ_BUFFER)
            .on_upgrade(run),
        Err(rejection) => refuse(ApiError::new(
            StatusCode::BAD_REQUEST,
            "not_a_websocket",
            rejection.body_text(),
        )),
    }
}

async fn notifications(
    State(gateway): State<Gateway>,
    Query(q): Query<Handshake>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let user = match authenticate(&gateway, &headers, &q) {
        Ok(user) => user,
        Err(e) => return refuse(e),
    };
    let since = match parse_since(q.since.as_deref()) {
        Ok(since) => since,
        Err(e) => return refuse(e),
    };
    let key = Channel::Notifications { user_id: user.id };
    upgrade(
        ws,
        Session {
            gateway,
            user,
            key,
            since,
        },
    )
}

async fn tickets(
    State(gateway): State<Gateway>,
    Path(pid): Path<String>,
    Query(q): Query<Handshake>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let checked = async {
        let (user, project_id) = project_member(&gateway, &headers, &q, &pid).await?;
        let since = parse_since(q.since.as_deref())?;
        Ok::<_, ApiError>((user, project_id, since))
    };
    match checked.await {
        Ok((user, project_id, since)) => {
            let key = Channel::Tickets { project_id };
            upgrade(
                ws,
                Session {
                    gateway,
                    user,
                    key,
                    since,
                },
            )
        }
        Err(e) => refuse(e),
    }
}

/// The project channels' checks, in the contract's order: token (401),
/// project exists (404), membership (403).
async fn project_member(
    gateway: &Gateway,
    headers: &HeaderMap,
    q: &Handshake,
    pid: &str,
) -> Result<(AuthUser, Uuid), ApiError> {
    let user = authenticate(gateway, headers, q)?;
    let project_id = path_id(pid, "project")?;
    gateway.app.member_project(project_id, &user).await?;
    Ok((user, project_id))
}

/// Presence: the tickets channel's handshake checks; `since` is ignored.
async fn presence(
    State(gateway): State<Gateway>,
    Path(pid): Path<String>,
    Query(q): Query<Handshake>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match project_member(&gateway, &headers, &q, &pid).await {
        Ok((user, project_id)) => {
            let session = PresenceSession {
                gateway,
                user,
                project_id,
            };
            upgrade_with(ws, move |socket| session.run(socket))
        }
        Err(e) => refuse(e),
    }
}
