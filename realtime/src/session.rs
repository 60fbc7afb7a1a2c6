//! One socket's life: handshake checks, `connection_established`, replay
//! from the read models, then live messages across a seamless switch.
//!
//! The seam: the socket joins the hub, and the channel's feed is in place,
//! *before* it reads the channel's head, so nothing committed after that read
//! can be missed; live messages at or
//! below the last seq sent are dropped, and a jump in seq (a message this
//! process never saw) is filled from the store. Hence: none missing, none
//! twice, whatever the timing.

use std::pin::Pin;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use ticketflow_app::{ApiError, AuthUser};
use tokio::time::{interval_at, sleep, sleep_until, Instant, Interval, Sleep};

use ticketflow_nats::Channel;

use crate::hub::{Control, Live, REMOVED_MEMBER, SLOW_CONSUMER};
use crate::Gateway;

/// Server Ping frames, so intermediaries keep the connection open.
pub const PING_EVERY: Duration = Duration::from_secs(25);
/// A peer that sends nothing (not even a Pong) this long is gone.
pub const IDLE_LIMIT: Duration = Duration::from_secs(60);
/// Stored messages read per query while replaying.
const REPLAY_PAGE: i64 = 1000;

/// How long a closing socket waits for the peer's Close reply.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// How long one frame may wait for a peer to read (see [`write`]).
const SEND_DEADLINE: Duration = Duration::from_secs(5);
/// How long a Close frame may wait for a stalled peer to catch up.
const CLOSE_SEND: Duration = Duration::from_secs(30);

const BAD_DATA: u16 = 1003;
const TOO_BIG: u16 = 1009;
const TOKEN_EXPIRED: u16 = 4401;

pub(crate) type Sink = SplitSink<WebSocket, Message>;
pub(crate) type Stream = SplitStream<WebSocket>;

/// Why a session ended early: the socket is gone or must be closed.
pub(crate) enum End {
    Gone,
    Close(u16, &'static str),
}

pub struct Session {
    pub gateway: Gateway,
    pub user: AuthUser,
    pub key: Channel,
    pub since: Option<i64>,
}

impl Session {
    pub async fn run(self, socket: WebSocket) {
        let (mut sink, mut stream) = socket.split();
        let outcome = self.serve(&mut sink, &mut stream).await;
        finish(&mut sink, &mut stream, outcome).await;
    }

    async fn serve(&self, sink: &mut Sink, stream: &mut Stream) -> Result<(), End> {
        let mut subscription = self.gateway.hub.subscribe(self.key, self.user.id);
        subscription.ready().await;
        // Boxed, like every path through the store: a socket's future lives
        // as long as it does, and inlining their state would make each idle
        // socket carry it.
        let head = Box::pin(self.head()).await?;
        send(sink, &self.established(head)).await?;
        let mut last = head;
        if let Some(since) = self.since {
            last = Box::pin(self.replay_since(sink, since, head)).await?;
        }
        let mut keepalive = Keepalive::new(&self.gateway.timing, self.user.expires_at);
        loop {
            tokio::select! {
                live = subscription.rx.recv() => {
                    // The hub drops a socket's queue when it closes it.
                    let Some(live) = live else { return Err(closed_by_hub(&subscription.control)) };
                    last = self.deliver(sink, last, live).await?;
                }
                _ = subscription.control.notify.notified() => {
                    return Err(closed_by_hub(&subscription.control));
                }
                frame = stream.next() => {
                    keepalive.heard();
                    if let Some(text) = text_of(frame)? {
                        send(sink, &reply_to(text.as_str())).await?;
                    }
                }
                due = keepalive.due() => {
                    due?;
                    write(sink, Message::Ping(Default::default())).await?;
                }
            }
        }
    }

    fn established(&self, head: i64) -> Value {
        match &self.key {
            Channel::Tickets { project_id } => json!({
                "type": "connection_established", "channel": "tickets",
                "user_id": self.user.id, "project_id": project_id, "seq": head,
            }),
            Channel::Notifications { .. } => json!({
                "type": "connection_established", "channel": "notifications",
                "user_id": self.user.id, "seq": head,
            }),
        }
    }

    async fn head(&self) -> Result<i64, End> {
        let reads = &self.gateway.app.reads;
        let head = match &self.key {
            Channel::Tickets { project_id: p } => reads.ticket_channel_head(*p).await,
            Channel::Notifications { user_id: u } => reads.notification_head(*u).await,
        };
        head.map_err(|_| End::Close(1011, "store unavailable"))
    }

    /// Replays (since, head] then says so; or asks for a resync when that
    /// history cannot be sent. Returns the last seq the client has.
    async fn replay_since(&self, sink: &mut Sink, since: i64, head: i64) -> Result<i64, End> {
        if since > head || head - since > self.gateway.replay_limit {
            send(sink, &json!({ "type": "resync_required", "seq": head })).await?;
            return Ok(head);
        }
        let last = self.replay(sink, since, head).await?;
        send(sink, &json!({ "type": "replay_complete", "seq": last })).await?;
        Ok(last)
    }

    /// Sends the stored messages with seq in (after, upto]; returns the last sent.
    async fn replay(&self, sink: &mut Sink, mut after: i64, upto: i64) -> Result<i64, End> {
        let reads = &self.gateway.app.reads;
        while after < upto {
            let want = REPLAY_PAGE.min(upto - after);
            let page = match &self.key {
                Channel::Tickets { project_id: p } => reads.ticket_messages(*p, after, want).await,
                Channel::Notifications { user_id: u } => {
                    reads.notification_messages(*u, after, want).await
                }
            }
            .map_err(|_| End::Close(1011, "store unavailable"))?;
            if page.is_empty() {
                break;
            }
            for (seq, json) in page {
                send_text(sink, json.into()).await?;
                after = seq;
            }
        }
        Ok(after)
    }

    /// Sends a live message in seq order, filling a gap from the store first.
    async fn deliver(&self, sink: &mut Sink, last: i64, live: Live) -> Result<i64, End> {
        let Some(seq) = live.seq else {
            // A signal outside the history: as it comes.
            send_text(sink, live.json).await?;
            return Ok(last);
        };
        if seq <= last {
            return Ok(last);
        }
        let last = if seq > last + 1 {
            Box::pin(self.replay(sink, last, seq - 1)).await?
        } else {
            last
        };
        if seq != last + 1 {
            return Ok(last);
        }
        send_text(sink, live.json).await?;
        Ok(seq)
    }
}

/// Closes the socket as `outcome` says, finishing the closing handshake.
pub(crate) async fn finish(sink: &mut Sink, stream: &mut Stream, outcome: Result<(), End>) {
    if let Err(End::Close(code, reason)) = outcome {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let close = sink.send(Message::Close(Some(frame)));
        // A stalled peer may take a while to read its backlog and our Close.
        if let Ok(Ok(())) = tokio::time::timeout(CLOSE_SEND, close).await {
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
        Some(Err(e)) => {
            // The only read error a live peer can cause is a frame over the limit.
            tracing::debug!(error = %e, "websocket read failed");
            return Err(End::Close(TOO_BIG, "message too big"));
        }
        Some(Ok(message)) => message,
    };
    match message {
        Message::Text(text) => Ok(Some(text)),
        Message::Binary(_) => Err(End::Close(BAD_DATA, "binary frames are not supported")),
        Message::Ping(_) | Message::Pong(_) => Ok(None),
        Message::Close(_) => Err(End::Gone),
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

/// Server pings, the idle limit and token expiry of one socket.
pub(crate) struct Keepalive {
    ping: Interval,
    idle_limit: Duration,
    idle_deadline: Instant,
    expiry: Pin<Box<Sleep>>,
}

impl Keepalive {
    pub(crate) fn new(timing: &Timing, expires_at: i64) -> Self {
        let left = expires_at - chrono::Utc::now().timestamp();
        Self {
            ping: interval_at(Instant::now() + timing.ping_every, timing.ping_every),
            idle_limit: timing.idle_limit,
            idle_deadline: Instant::now() + timing.idle_limit,
            expiry: Box::pin(sleep(Duration::from_secs(left.max(0) as u64))),
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
            _ = sleep_until(self.idle_deadline) => Err(End::Close(1000, "idle")),
            _ = &mut self.expiry => Err(End::Close(TOKEN_EXPIRED, "token expired")),
        }
    }
}

/// Why the hub let go of a socket.
pub(crate) fn closed_by_hub(control: &Control) -> End {
    match control.code.load(std::sync::atomic::Ordering::SeqCst) {
        SLOW_CONSUMER => End::Close(SLOW_CONSUMER, "slow consumer"),
        REMOVED_MEMBER => End::Close(REMOVED_MEMBER, "removed from project"),
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

pub(crate) fn pong(ping: &Value) -> Value {
    json!({ "type": "pong", "timestamp": ping["timestamp"] })
}

/// The answer to a client's text message on a tickets/notifications channel.
fn reply_to(text: &str) -> Value {
    match parse_client(text) {
        Ok((kind, message)) if kind == "ping" => pong(&message),
        Ok((other, _)) => bad_message(&format!("unknown message type {other:?} on this channel")),
        Err(bad) => bad,
    }
}

pub(crate) fn bad_message(message: &str) -> Value {
    json!({ "type": "error", "code": "bad_message", "message": message })
}

pub(crate) async fn send_text(sink: &mut Sink, json: Utf8Bytes) -> Result<(), End> {
    write(sink, Message::Text(json)).await
}

pub(crate) async fn send(sink: &mut Sink, value: &Value) -> Result<(), End> {
    write(sink, Message::Text(value.to_string().into())).await
}

/// Writes a frame. A peer that has not taken it within [`SEND_DEADLINE`]
/// has stopped reading (its TCP buffers are full): a slow consumer, closed
/// with 4008 rather than left to stall this session.
pub(crate) async fn write(sink: &mut Sink, message: Message) -> Result<(), End> {
    match tokio::time::timeout(SEND_DEADLINE, sink.send(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(End::Gone),
        Err(_) => Err(End::Close(SLOW_CONSUMER, "slow consumer")),
    }
}

/// Refusals before the upgrade use the API's error body.
pub fn refuse(e: ApiError) -> axum::response::Response {
    axum::response::IntoResponse::into_response(e)
}
