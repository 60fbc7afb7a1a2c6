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
//! with a deadline, closing).

pub mod close_codes;
mod handshake;
pub mod head_check;
pub mod hub;
pub mod listener;
pub mod presence;
mod session;
mod socket;

pub use socket::Timing;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use ticketflow_app::AppState;
use ticketflow_nats::{Broker, BusError};
use tokio::task::JoinHandle;

use crate::handshake::{Door, Opening};
use crate::hub::Hub;
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
        let checking = tokio::spawn(head_check::run(hub.clone(), app.reads.clone()));
        let tasks = vec![listening, tokio::spawn(presence_task), checking];
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

async fn notifications(State(gateway): State<Gateway>, opening: Opening) -> Response {
    opening.open(gateway, Door::Notifications).await
}

async fn tickets(
    State(gateway): State<Gateway>,
    Path(pid): Path<String>,
    opening: Opening,
) -> Response {
    opening.open(gateway, Door::Tickets { pid: &pid }).await
}

async fn presence(
    State(gateway): State<Gateway>,
    Path(pid): Path<String>,
    opening: Opening,
) -> Response {
    opening.open(gateway, Door::Presence { pid: &pid }).await
}
