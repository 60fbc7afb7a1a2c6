//! What the gateway tells operators, through the `metrics` facade: sockets
//! open per kind, messages sent, replays and their sizes, resyncs, closes by
//! code, and the losses that did not happen (gaps in `seq` filled from the
//! store, by a socket itself or told by the head check).
//!
//! Every handle is registered once, when the gateway starts ([`Metrics::register`]),
//! and shared by its sockets: sending a message costs one atomic add on a
//! counter, no label set built and no allocation, and every series exists
//! (at 0) from the start, so rates and alerts have something to read.

use metrics::{Counter, Gauge, Histogram};
use ticketflow_nats::Channel;

use crate::close_codes::{
    BAD_DATA, INTERNAL, INVALID_PAYLOAD, NORMAL, PROTOCOL_ERROR, REMOVED_MEMBER, SLOW_CONSUMER,
    TOKEN_EXPIRED, TOO_BIG,
};
use crate::socket::End;

/// Sockets open now, by `channel` (tickets, notifications, presence).
pub const SOCKETS_OPEN: &str = "ticketflow_ws_sockets_open";
/// Sockets opened (handshake passed), by `channel`.
pub const CONNECTIONS: &str = "ticketflow_ws_connections_total";
/// Messages sent on sockets, live or from the store, by `channel`.
pub const DELIVERIES: &str = "ticketflow_ws_deliveries_total";
/// Replays started (a socket opened with `since`), by `channel`.
pub const REPLAYS: &str = "ticketflow_ws_replays_total";
/// Messages each replay sent, by `channel`.
pub const REPLAY_MESSAGES: &str = "ticketflow_ws_replay_messages";
/// `resync_required` sent (a `since` too old or ahead of the head), by `channel`.
pub const RESYNCS: &str = "ticketflow_ws_resyncs_total";
/// Jumps in a live `seq` a socket filled from the store, by `channel`.
pub const GAP_FILLS: &str = "ticketflow_ws_gap_fills_total";
/// Sockets that filled up from the store when the head check found their
/// channel behind its stored head (a message stored but never published),
/// by `channel`.
pub const HEAD_CHECK_CATCH_UPS: &str = "ticketflow_ws_head_check_catch_ups_total";
/// Sockets the server closed, by close `code` (4008: slow consumer).
pub const CLOSES: &str = "ticketflow_ws_closes_total";
/// Users present on this instance's presence sockets (one per project they
/// are in, however many sockets they hold).
pub const PRESENCE_USERS: &str = "ticketflow_presence_users";

/// Every close code the gateway sends.
const CODES: [u16; 9] = [
    NORMAL,
    PROTOCOL_ERROR,
    BAD_DATA,
    INVALID_PAYLOAD,
    TOO_BIG,
    INTERNAL,
    SLOW_CONSUMER,
    TOKEN_EXPIRED,
    REMOVED_MEMBER,
];

/// The gateway's handles.
pub struct Metrics {
    pub tickets: ChannelMetrics,
    pub notifications: ChannelMetrics,
    pub presence: SocketMetrics,
    closes: Vec<(u16, Counter)>,
}

/// The handles of one kind of socket.
pub struct SocketMetrics {
    open: Gauge,
    connections: Counter,
    pub deliveries: Counter,
}

/// The handles of a kind of channel with a history (tickets, notifications).
pub struct ChannelMetrics {
    pub sockets: SocketMetrics,
    pub replays: Counter,
    pub replay_messages: Histogram,
    pub resyncs: Counter,
    pub gap_fills: Counter,
    pub head_check_catch_ups: Counter,
}

impl Metrics {
    /// Registers every handle with the installed recorder (none installed:
    /// they record nothing).
    pub fn register() -> Self {
        let closes = CODES
            .iter()
            .map(|code| (*code, metrics::counter!(CLOSES, "code" => code.to_string())))
            .collect();
        Self {
            tickets: ChannelMetrics::register("tickets"),
            notifications: ChannelMetrics::register("notifications"),
            presence: SocketMetrics::register("presence"),
            closes,
        }
    }

    pub fn channel(&self, key: &Channel) -> &ChannelMetrics {
        match key {
            Channel::Tickets { .. } => &self.tickets,
            Channel::Notifications { .. } => &self.notifications,
        }
    }

    /// Counts how a socket ended, when the server closed it.
    pub(crate) fn ended(&self, outcome: &Result<(), End>) {
        let Err(End::Close(code, _)) = outcome else {
            return;
        };
        if let Some((_, closes)) = self.closes.iter().find(|(c, _)| c == code) {
            closes.increment(1);
        }
    }
}

impl SocketMetrics {
    fn register(channel: &'static str) -> Self {
        Self {
            open: metrics::gauge!(SOCKETS_OPEN, "channel" => channel),
            connections: metrics::counter!(CONNECTIONS, "channel" => channel),
            deliveries: metrics::counter!(DELIVERIES, "channel" => channel),
        }
    }

    /// Counts a socket open until the guard is dropped.
    pub(crate) fn open(&self) -> OpenSocket {
        self.connections.increment(1);
        self.open.increment(1.0);
        OpenSocket(self.open.clone())
    }
}

impl ChannelMetrics {
    fn register(channel: &'static str) -> Self {
        Self {
            sockets: SocketMetrics::register(channel),
            replays: metrics::counter!(REPLAYS, "channel" => channel),
            replay_messages: metrics::histogram!(REPLAY_MESSAGES, "channel" => channel),
            resyncs: metrics::counter!(RESYNCS, "channel" => channel),
            gap_fills: metrics::counter!(GAP_FILLS, "channel" => channel),
            head_check_catch_ups: metrics::counter!(HEAD_CHECK_CATCH_UPS, "channel" => channel),
        }
    }
}

/// A socket counted in `ticketflow_ws_sockets_open` while this lives.
pub(crate) struct OpenSocket(Gauge);

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}
