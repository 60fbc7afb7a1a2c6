//! One channel socket's life (tickets or notifications): `connection_established`,
//! replay from the read models, then live messages across a seamless switch.
//!
//! The seam: the socket joins the hub, and the channel's feed is in place,
//! *before* it reads the channel's head, so nothing committed after that read
//! can be missed; live messages at or
//! below the last seq sent are dropped, and a jump in seq (a message this
//! process never saw) is filled from the store, as is a stored head the head
//! check reports (a message nobody published: [`crate::head_check`]). Hence:
//! none missing, none twice, whatever the timing.

use axum::extract::ws::WebSocket;
use futures::StreamExt;
use serde_json::{json, Value};
use ticketflow_app::AuthUser;
use ticketflow_nats::Channel;

use crate::hub::Live;
use crate::metrics::ChannelMetrics;
use crate::socket::{
    closed_by_hub, finish, parse_client, ping, pong, send, send_text, text_of, unknown_type,
    within, End, Keepalive, Sink, Stream,
};
use crate::Gateway;

/// Stored messages read per query while replaying.
const REPLAY_PAGE: i64 = 1000;

/// One socket of a channel, once its handshake passed.
pub(crate) struct Session {
    pub gateway: Gateway,
    pub user: AuthUser,
    pub key: Channel,
    /// The last seq the client has, when it resumes.
    pub since: Option<i64>,
}

impl Session {
    pub async fn run(self, socket: WebSocket) {
        let _open = self.metrics().sockets.open();
        let (mut sink, mut stream) = socket.split();
        let outcome = self.serve(&mut sink, &mut stream).await;
        self.gateway.metrics.ended(&outcome);
        finish(&mut sink, &mut stream, outcome, &self.gateway.app.drain).await;
    }

    fn metrics(&self) -> &ChannelMetrics {
        self.gateway.metrics.channel(&self.key)
    }

    async fn serve(&self, sink: &mut Sink, stream: &mut Stream) -> Result<(), End> {
        let mut subscription = self.gateway.hub.subscribe(self.key, self.user.id);
        // Registered: a drain that began before is not told to the hub again.
        if self.gateway.app.drain.has_begun() {
            return Err(End::restart());
        }
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
        let mut keepalive = Keepalive::new(&self.gateway, &self.user);
        let messages = self.gateway.app.limits.socket_messages();
        loop {
            tokio::select! {
                live = subscription.rx.recv() => {
                    // The hub drops a socket's queue when it closes it.
                    let Some(live) = live else { return Err(closed_by_hub(&subscription.control)) };
                    last = self.deliver(sink, last, live).await?;
                }
                changed = subscription.catch_up.changed() => {
                    // Its sender goes only once the hub has dropped this socket.
                    if changed.is_err() {
                        return Err(closed_by_hub(&subscription.control));
                    }
                    let head = *subscription.catch_up.borrow_and_update();
                    if head > last {
                        self.metrics().head_check_catch_ups.increment(1);
                        last = Box::pin(self.replay(sink, last, head)).await?;
                    }
                }
                _ = subscription.control.notify.notified() => {
                    return Err(closed_by_hub(&subscription.control));
                }
                frame = stream.next() => {
                    keepalive.heard();
                    if let Some(text) = text_of(frame)? {
                        let reply = within(&messages).map_or_else(|refused| refused, |()| reply_to(text.as_str()));
                        send(sink, &reply).await?;
                    }
                }
                due = keepalive.due() => {
                    due?;
                    ping(sink).await?;
                }
            }
        }
    }

    fn established(&self, head: i64) -> Value {
        let mut message = json!({
            "type": "connection_established", "channel": self.key.name(),
            "user_id": self.user.id,
        });
        if let Channel::Tickets { project_id } = self.key {
            message["project_id"] = json!(project_id);
        }
        message["seq"] = json!(head);
        message
    }

    async fn head(&self) -> Result<i64, End> {
        let reads = &self.gateway.app.reads;
        let head = match &self.key {
            Channel::Tickets { project_id: p } => reads.ticket_channel_head(*p).await,
            Channel::Notifications { user_id: u } => reads.notification_head(*u).await,
        };
        head.map_err(|_| End::store_unavailable())
    }

    /// Replays (since, head] then says so; or asks for a resync when that
    /// history cannot be sent. Returns the last seq the client has.
    async fn replay_since(&self, sink: &mut Sink, since: i64, head: i64) -> Result<i64, End> {
        let metrics = self.metrics();
        if since > head || head - since > self.gateway.replay_limit {
            metrics.resyncs.increment(1);
            send(sink, &json!({ "type": "resync_required", "seq": head })).await?;
            return Ok(head);
        }
        metrics.replays.increment(1);
        let last = self.replay(sink, since, head).await?;
        metrics.replay_messages.record((last - since) as f64);
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
            .map_err(|_| End::store_unavailable())?;
            if page.is_empty() {
                break;
            }
            let sent = page.len() as u64;
            for (seq, json) in page {
                send_text(sink, json.into()).await?;
                after = seq;
            }
            self.metrics().sockets.deliveries.increment(sent);
        }
        Ok(after)
    }

    /// Sends a live message in seq order, filling a gap from the store first.
    async fn deliver(&self, sink: &mut Sink, last: i64, live: Live) -> Result<i64, End> {
        let deliveries = &self.metrics().sockets.deliveries;
        let Some(seq) = live.seq else {
            // A signal outside the history: as it comes.
            send_text(sink, live.json).await?;
            deliveries.increment(1);
            return Ok(last);
        };
        if seq <= last {
            return Ok(last);
        }
        let last = if seq > last + 1 {
            self.metrics().gap_fills.increment(1);
            Box::pin(self.replay(sink, last, seq - 1)).await?
        } else {
            last
        };
        if seq != last + 1 {
            return Ok(last);
        }
        send_text(sink, live.json).await?;
        deliveries.increment(1);
        Ok(seq)
    }
}

/// The answer to a client's text message on a tickets/notifications channel.
pub fn reply_to(text: &str) -> Value {
    match parse_client(text) {
        Ok((kind, message)) if kind == "ping" => pong(&message),
        Ok((other, _)) => unknown_type(&other),
        Err(bad) => bad,
    }
}
