//! The socket plumbing both kinds of session share: reading client frames,
//! writing with a deadline, keepalive and the token's end (expiry, or its
//! session's revocation), closing properly, and the client messages every
//! channel answers the same way (`ping`, `bad_message`, and `rate_limited`
//! past the socket's limit).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use ticketflow_app::rate_limits::MessageLimit;
use ticketflow_app::{ApiError, AuthUser, Drain, TokenKeys};
use tokio::sync::watch;
use tokio::time::{interval_at, sleep, sleep_until, Instant, Interval, Sleep};
use uuid::Uuid;

use crate::close_codes::{
    BAD_DATA, INTERNAL, INVALID_PAYLOAD, NORMAL, PROTOCOL_ERROR, REMOVED_MEMBER, SERVICE_RESTART,
    SLOW_CONSUMER, TOKEN_EXPIRED, TOO_BIG,
};
use crate::hub::Control;
use crate::Gateway;

/// Server Ping frames, so intermediaries keep the connection open.
pub const PING_EVERY: Duration = Duration::from_secs(25);
/// A peer that sends nothing (not even a Pong) this long is gone.
pub const IDLE_LIMIT: Duration = Duration::from_secs(60);

/// How long a closing socket waits for the peer's Close reply.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// How long one frame may wait for a peer to read (see [`write`]).
const SEND_DEADLINE: Duration = Duration::from_secs(5);
/// How long a Close frame may wait for a stalled peer to catch up.
const CLOSE_SEND: Duration = Duration::from_secs(30);

pub(crate) type Sink = SplitSink<WebSocket, Message>;
pub(crate) type Stream = SplitStream<WebSocket>;

/// Why a session ended early: the socket is gone or must be closed.
pub(crate) enum End {
    Gone,
    Close(u16, &'static str),
}

impl End {
    /// The read models could not be reached: the client reconnects later.
    pub(crate) fn store_unavailable() -> Self {
        End::Close(INTERNAL, "store unavailable")
    }

    /// The process is draining: the client resumes on another instance.
    pub(crate) fn restart() -> Self {
        End::Close(SERVICE_RESTART, "server restarting")
    }
}

/// Closes the socket as `outcome` says, finishing the closing handshake
/// (sooner once the process drains).
pub(crate) async fn finish(
    sink: &mut Sink,
    stream: &mut Stream,
    outcome: Result<(), End>,
    drain: &Drain,
) {
    if let Err(End::Close(code, reason)) = outcome {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let close = sink.send(Message::Close(Some(frame)));
        // A stalled peer may take a while to read its backlog and our Close;
        // not while the process drains, which has a time limit to keep.
        let within = if drain.has_begun() {
            CLOSE_GRACE
        } else {
            CLOSE_SEND
        };
        if let Ok(Ok(())) = tokio::time::timeout(within, close).await {
            // Finish the closing handshake: closing the TCP connection
            // with unread input would reset it and lose our Close frame.
            let drain = async {
                while let Some(Ok(message)) = stream.next().await {
                    if matches!(message, Message::Close(_)) {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(CLOSE_GRACE, drain).await;
        }
    }
}

/// A client's frame: its text, `None` for control frames, or why the
/// socket ends (closed, binary, over the size limit).
pub(crate) fn text_of(
    frame: Option<Result<Message, axum::Error>>,
) -> Result<Option<Utf8Bytes>, End> {
    let message = match frame {
        None => return Err(End::Gone),
        Some(Err(e)) => return Err(read_failed(e)),
        Some(Ok(message)) => message,
    };
    match message {
        Message::Text(text) => Ok(Some(text)),
        Message::Binary(_) => Err(End::Close(BAD_DATA, "binary frames are not supported")),
        Message::Ping(_) | Message::Pong(_) => Ok(None),
        Message::Close(_) => Err(End::Gone),
    }
}

/// How a socket whose frame could not be read ends: a peer that broke the
/// protocol or sent too big or ill-encoded a message gets the close code
/// saying so; a connection that failed has nobody left to tell.
fn read_failed(e: axum::Error) -> End {
    tracing::debug!(error = %e, "websocket read failed");
    let inner = e.into_inner();
    match inner.downcast_ref::<tungstenite::Error>() {
        Some(tungstenite::Error::Protocol(_)) => End::Close(PROTOCOL_ERROR, "protocol error"),
        Some(tungstenite::Error::Capacity(_)) => End::Close(TOO_BIG, "message too big"),
        Some(tungstenite::Error::Utf8(_)) => End::Close(INVALID_PAYLOAD, "text is not UTF-8"),
        _ => End::Gone,
    }
}

/// How often the server pings, and how long a silent peer may stay.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub ping_every: Duration,
    pub idle_limit: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            ping_every: PING_EVERY,
            idle_limit: IDLE_LIMIT,
        }
    }
}

/// Server pings, the idle limit, and the end of the token's life (expiry or
/// its session's revocation) of one socket.
pub(crate) struct Keepalive {
    ping: Interval,
    idle_limit: Duration,
    idle_deadline: Instant,
    expiry: Pin<Box<Sleep>>,
    session: SessionWatch,
}

impl Keepalive {
    pub(crate) fn new(gateway: &Gateway, user: &AuthUser) -> Self {
        let timing = &gateway.timing;
        let left = user.expires_at - chrono::Utc::now().timestamp();
        Self {
            ping: interval_at(Instant::now() + timing.ping_every, timing.ping_every),
            idle_limit: timing.idle_limit,
            idle_deadline: Instant::now() + timing.idle_limit,
            expiry: Box::pin(sleep(Duration::from_secs(left.max(0) as u64))),
            session: SessionWatch {
                changes: gateway.app.tokens.revocations(),
                tokens: gateway.app.tokens.clone(),
                family: user.family,
            },
        }
    }

    /// The peer sent something.
    pub(crate) fn heard(&mut self) {
        self.idle_deadline = Instant::now() + self.idle_limit;
    }

    /// Resolves when a Ping frame is due (`Ok`) or the socket must close.
    pub(crate) async fn due(&mut self) -> Result<(), End> {
        tokio::select! {
            _ = self.ping.tick() => Ok(()),
            _ = sleep_until(self.idle_deadline) => Err(End::Close(NORMAL, "idle")),
            _ = &mut self.expiry => Err(End::Close(TOKEN_EXPIRED, "token expired")),
            () = self.session.ended() => Err(End::Close(TOKEN_EXPIRED, "session ended")),
        }
    }
}

/// Whether the refresh family a socket's token comes from is revoked.
struct SessionWatch {
    /// Changes with every revocation this process learns of; marked changed
    /// at first, since one may have come after the handshake's check.
    changes: watch::Receiver<u64>,
    tokens: Arc<TokenKeys>,
    /// `None` for a token from before tokens named their family.
    family: Option<Uuid>,
}

impl SessionWatch {
    /// Resolves once the family is revoked (never, without one).
    async fn ended(&mut self) {
        let Some(family) = self.family else {
            return std::future::pending().await;
        };
        // Cancel-safe: `changed` marks a change seen only as it returns, and
        // the check follows with no await in between.
        while self.changes.changed().await.is_ok() {
            if self.tokens.is_revoked(family) {
                return;
            }
        }
        std::future::pending().await
    }
}

/// Why the hub let go of a socket.
pub(crate) fn closed_by_hub(control: &Control) -> End {
    match control.code.load(std::sync::atomic::Ordering::SeqCst) {
        SLOW_CONSUMER => End::Close(SLOW_CONSUMER, "slow consumer"),
        REMOVED_MEMBER => End::Close(REMOVED_MEMBER, "removed from project"),
        SERVICE_RESTART => End::restart(),
        _ => End::Gone,
    }
}

/// A client's text message with its type, or the `bad_message` answer.
pub(crate) fn parse_client(text: &str) -> Result<(String, Value), Value> {
    let Ok(message) = serde_json::from_str::<Value>(text) else {
        return Err(bad_message("message is not valid JSON"));
    };
    match message["type"].as_str() {
        Some(kind) => Ok((kind.to_string(), message)),
        None => Err(bad_message("message has no type")),
    }
}

/// Whether the client may send another message now, else the answer to
/// it: `{"type":"error","code":"rate_limited","message","retry_after_ms"}`.
/// The message is dropped, unanswered otherwise, and the socket stays open:
/// the refusal costs no more than a `bad_message` would.
pub(crate) fn within(limit: &MessageLimit) -> Result<(), Value> {
    limit.check().map_err(|wait| {
        let refused = ApiError::rate_limited("messages on this socket", wait);
        let mut answer =
            json!({ "type": "error", "code": refused.code, "message": refused.message });
        if let Some(fields) = answer.as_object_mut() {
            fields.extend(refused.extra);
        }
        answer
    })
}

pub(crate) fn pong(ping: &Value) -> Value {
    json!({ "type": "pong", "timestamp": ping["timestamp"] })
}

pub(crate) fn bad_message(message: &str) -> Value {
    json!({ "type": "error", "code": "bad_message", "message": message })
}

/// The answer to a message type this channel does not take.
pub(crate) fn unknown_type(kind: &str) -> Value {
    bad_message(&format!("unknown message type {kind:?} on this channel"))
}

pub(crate) async fn send_text(sink: &mut Sink, json: Utf8Bytes) -> Result<(), End> {
    write(sink, Message::Text(json)).await
}

pub(crate) async fn send(sink: &mut Sink, value: &Value) -> Result<(), End> {
    write(sink, Message::Text(value.to_string().into())).await
}

/// Sends a server Ping frame (see [`Keepalive::due`]).
pub(crate) async fn ping(sink: &mut Sink) -> Result<(), End> {
    write(sink, Message::Ping(Default::default())).await
}

/// Writes a frame. A peer that has not taken it within [`SEND_DEADLINE`]
/// has stopped reading (its TCP buffers are full): a slow consumer, closed
/// with 4008 rather than left to stall this session.
async fn write(sink: &mut Sink, message: Message) -> Result<(), End> {
    match tokio::time::timeout(SEND_DEADLINE, sink.send(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Gone),
        Err(_) => Err(End::Close(SLOW_CONSUMER, "slow consumer")),
    }
}

#[cfg(test)]
mod tests {
    use tungstenite::error::{CapacityError, ProtocolError};

    use super::*;

    fn code(e: tungstenite::Error) -> Option<u16> {
        match read_failed(axum::Error::new(e)) {
            End::Close(code, _) => Some(code),
            End::Gone => None,
        }
    }

    #[test]
    fn each_read_error_closes_with_its_code() {
        let protocol = [
            ProtocolError::UnmaskedFrameFromClient,
            ProtocolError::UnexpectedContinueFrame,
            ProtocolError::UnknownDataFrameType(3),
            ProtocolError::NonZeroReservedBits,
        ];
        for e in protocol {
            assert_eq!(code(tungstenite::Error::Protocol(e)), Some(PROTOCOL_ERROR));
        }
        let big = CapacityError::MessageTooLong {
            size: 70_000,
            max_size: 65_536,
        };
        assert_eq!(code(tungstenite::Error::Capacity(big)), Some(TOO_BIG));
        let utf8 = tungstenite::Error::Utf8("invalid".into());
        assert_eq!(code(utf8), Some(INVALID_PAYLOAD));
        assert_eq!(code(tungstenite::Error::ConnectionClosed), None);
    }
}
