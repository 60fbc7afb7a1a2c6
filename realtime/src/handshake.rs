//! The handshake every socket goes through before its upgrade: first the
//! client address's rate limit (429), the page's origin (403; browsers do
//! not apply CORS to sockets, so the gateway checks `Origin` itself, and
//! clients that send none pass), then in the contract's order: token (401),
//! with the user's rate limit (429) right after, project exists (404; a
//! non-UUID id too), membership (403), then `since` (400) on the channels
//! that replay. A refusal is an HTTP response with the API's error body;
//! nothing is upgraded. An upgraded socket's log lines carry its
//! `connection_id` (and the handshake's `request_id`).

use std::future::Future;
use std::net::SocketAddr;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use ticketflow_app::{bearer, params, path_id, ApiError, AuthUser, OpenSocket};
use ticketflow_nats::Channel;
use tracing::{Instrument, Span};
use utoipa::IntoParams;
use uuid::Uuid;

use crate::presence::PresenceSession;
use crate::session::Session;
use crate::Gateway;

/// The largest client message: 64 KiB (65,536 bytes is allowed).
const MAX_MESSAGE: usize = 64 * 1024;

/// Initial read buffer of a socket. Clients send little (pings, presence),
/// and tungstenite's 128 KiB default, zero-filled on first read, would make
/// 10,000 idle sockets cost 1.3 GB; a bigger message grows the buffer.
const READ_BUFFER: usize = 1024;

/// The handshake's query string.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Handshake {
    /// The access token (browsers cannot set headers on sockets); the
    /// `Authorization` header wins when both are sent.
    token: Option<String>,
    /// The last seq the client has: the channel replays what came after it
    /// (tickets and notifications).
    #[param(value_type = Option<i64>, minimum = 0)]
    since: Option<String>,
}

/// A socket's handshake request, as far as every socket's is the same: its
/// query, its headers and the upgrade (a failed upgrade is refused only
/// after the checks, which come first).
pub(crate) struct Opening {
    query: Handshake,
    headers: HeaderMap,
    /// The peer's address (absent only outside a real server).
    peer: Option<SocketAddr>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
}

impl<S: Send + Sync> FromRequestParts<S> for Opening {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        // A query that does not fit is refused like `since` (400).
        let query = params::parse_query(parts.uri.query()).map_err(refused_query)?;
        let headers = parts.headers.clone();
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| *peer);
        let ws = WebSocketUpgrade::from_request_parts(parts, state).await;
        Ok(Self {
            query,
            headers,
            peer,
            ws,
        })
    }
}

/// The socket a client opens, as its path names it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Door<'a> {
    Notifications,
    Tickets {
        pid: &'a str,
    },
    /// `since` is ignored here: presence has no history.
    Presence {
        pid: &'a str,
    },
}

/// A session ready to run on the upgraded socket.
enum Admitted {
    Channel(Session),
    Presence(PresenceSession),
}

impl Opening {
    /// Answers the handshake: the upgrade to the door's session, or the refusal.
    pub(crate) async fn open(self, gateway: Gateway, door: Door<'_>) -> Response {
        let Self {
            query,
            headers,
            peer,
            ws,
        } = self;
        let limits = &gateway.app.limits;
        if let Err(refused) = limits.handshake_from(limits.client_ip(peer, &headers)) {
            return refused.into_response();
        }
        // Counted from here, so a drain waits for a socket being upgraded.
        let open = gateway.app.drain.socket_opened();
        // One upgrade per kind of session: a socket's future is the size of
        // its own session's, not of the larger of the two.
        match admit(gateway, &headers, query, door).await {
            Ok(Admitted::Channel(session)) => {
                let span = socket_span(&headers, &session.user);
                upgrade(ws, open, span, move |socket| session.run(socket))
            }
            Ok(Admitted::Presence(session)) => {
                let span = socket_span(&headers, &session.user);
                upgrade(ws, open, span, move |socket| session.run(socket))
            }
            Err(e) => e.into_response(),
        }
    }
}

/// Runs the checks; yields the session the socket gets.
async fn admit(
    gateway: Gateway,
    headers: &HeaderMap,
    query: Handshake,
    door: Door<'_>,
) -> Result<Admitted, ApiError> {
    check_origin(&gateway, headers)?;
    let user = authenticate(&gateway, headers, &query)?;
    gateway.app.limits.handshake_by(user.id)?;
    let admitted = match door {
        Door::Notifications => {
            let key = Channel::Notifications { user_id: user.id };
            channel(gateway, user, key, &query)?
        }
        Door::Tickets { pid } => {
            let project_id = member_of(&gateway, &user, pid).await?;
            channel(gateway, user, Channel::Tickets { project_id }, &query)?
        }
        Door::Presence { pid } => {
            let project_id = member_of(&gateway, &user, pid).await?;
            Admitted::Presence(PresenceSession {
                gateway,
                user,
                project_id,
            })
        }
    };
    Ok(admitted)
}

/// Refuses a browser page the API would refuse too (see [`ticketflow_app::Origins`]).
fn check_origin(gateway: &Gateway, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match origin.to_str() {
        Ok(origin) if gateway.app.origins.allows(origin, host) => Ok(()),
        _ => Err(ApiError::forbidden(
            "this page's origin may not open sockets here",
        )),
    }
}

/// The caller, by header token (which wins) or `?token=`.
fn authenticate(
    gateway: &Gateway,
    headers: &HeaderMap,
    query: &Handshake,
) -> Result<AuthUser, ApiError> {
    let token = bearer(headers)
        .or(query.token.as_deref())
        .ok_or_else(|| ApiError::unauthenticated("missing token"))?;
    gateway.app.authenticate(token)
}

/// The project, once it exists (404) and the caller is a member (403).
async fn member_of(gateway: &Gateway, user: &AuthUser, pid: &str) -> Result<Uuid, ApiError> {
    let project_id = path_id(pid, "project")?;
    gateway.app.member_project(project_id, user).await?;
    Ok(project_id)
}

fn channel(
    gateway: Gateway,
    user: AuthUser,
    key: Channel,
    query: &Handshake,
) -> Result<Admitted, ApiError> {
    let since = parse_since(query.since.as_deref())?;
    Ok(Admitted::Channel(Session {
        gateway,
        user,
        key,
        since,
    }))
}

/// `since`: a seq; the contract makes a bad one a handshake 400.
pub fn parse_since(raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    raw.map(|s| {
        params::integer("since", s, params::NON_NEGATIVE)
            .map_err(|bad| refused_query(bad.in_query()))
    })
    .transpose()
}

/// A bad handshake query parameter is a 400 (the contract's, for `since`),
/// not the API's 422: no socket opens either way.
fn refused_query(mut e: ApiError) -> ApiError {
    e.status = StatusCode::BAD_REQUEST;
    e
}

/// The span of a socket's session: its own id, the handshake's request id
/// and its user. Not a child of the handshake's request span, which ends
/// with the upgrade's response.
fn socket_span(headers: &HeaderMap, user: &AuthUser) -> Span {
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        parent: None,
        "socket",
        connection_id = %Uuid::now_v7(),
        request_id,
        user_id = %user.id,
    )
}

/// Upgrades with the gateway's frame limits, and runs `session` on the
/// socket in `span`, counted as `open` until it ends.
fn upgrade<F, Fut>(
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    open: OpenSocket,
    span: Span,
    session: F,
) -> Response
where
    F: FnOnce(WebSocket) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    match ws {
        Ok(ws) => ws
            .max_message_size(MAX_MESSAGE)
            .max_frame_size(MAX_MESSAGE)
            .read_buffer_size(READ_BUFFER)
            .on_upgrade(move |socket| {
                async move {
                    let _open = open;
                    tracing::debug!("socket opened");
                    session(socket).await;
                    tracing::debug!("socket closed");
                }
                .instrument(span)
            }),
        Err(rejection) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "not_a_websocket",
            rejection.body_text(),
        )
        .into_response(),
    }
}
