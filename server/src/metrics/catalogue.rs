//! Every metric the server exports, with the help text scrapes carry
//! (`# HELP`). The tests hold the exports, this list, the Grafana dashboard
//! (`docs/grafana/ticketflow.json`) and the operations guide to one another:
//! a metric renamed in one place and not the others fails them.

use ticketflow_app::command_metrics as commands;
use ticketflow_nats::metrics as nats;
use ticketflow_realtime::metrics as realtime;
use ticketflow_store::metrics as store;

use super::{http, sample};

/// A metric: its name, kind, meaning, and where it is exported.
#[derive(Debug, Clone, Copy)]
pub struct Described {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    pub applies: Applies,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    /// In both modes.
    Always,
    /// On PostgreSQL and NATS only (the embedded mode has neither).
    Services,
}

const fn metric(name: &'static str, kind: Kind, help: &'static str) -> Described {
    Described {
        name,
        kind,
        help,
        applies: Applies::Always,
    }
}

const fn services(name: &'static str, kind: Kind, help: &'static str) -> Described {
    Described {
        name,
        kind,
        help,
        applies: Applies::Services,
    }
}

use Kind::{Counter, Gauge, Histogram};

pub const CATALOGUE: &[Described] = &[
    metric(http::REQUESTS, Counter, "HTTP requests answered, by route pattern, method and status."),
    metric(http::REQUEST_SECONDS, Histogram, "Seconds from an HTTP request to its response's head, by route pattern and method."),
    metric(commands::COMMANDS, Counter, "Commands run, by type and outcome (ok, conflict, invalid, contended, forbidden, not_found, unavailable, error)."),
    metric(store::APPEND_SECONDS, Histogram, "Seconds an append to the event log takes, queueing for the group commit included, by stream type."),
    metric(store::APPENDS, Counter, "Appends to the event log, by stream type and outcome (ok, conflict, error)."),
    metric(store::GROUP_COMMIT_WRITES, Histogram, "Writes per group commit (PostgreSQL: ticket appends; SQLite: every write)."),
    metric(store::GROUP_COMMIT_SECONDS, Histogram, "Seconds one group commit takes, retries included."),
    metric(sample::LOG_HEAD, Gauge, "Position of the newest event committed to the log."),
    metric(nats::RELAY_PUBLISHED, Counter, "Events the relay published (JetStream; embedded: the in-process broker)."),
    metric(nats::RELAY_POSITION, Gauge, "Log position of the last event the relay published."),
    metric(nats::RELAY_LAG, Gauge, "Events committed to the log but not yet published by the relay (log head minus relay position)."),
    metric(sample::CHECKPOINT, Gauge, "Log position each projection has applied, by projection."),
    metric(sample::PROJECTION_LAG, Gauge, "Events committed to the log but not yet applied, by projection (log head minus checkpoint)."),
    metric(realtime::SOCKETS_OPEN, Gauge, "WebSockets open, by channel (tickets, notifications, presence)."),
    metric(realtime::CONNECTIONS, Counter, "WebSockets opened (handshake passed), by channel."),
    metric(realtime::DELIVERIES, Counter, "Messages sent on WebSockets, live or replayed, by channel."),
    metric(realtime::REPLAYS, Counter, "Replays started (a socket opened with since), by channel."),
    metric(realtime::REPLAY_MESSAGES, Histogram, "Messages each replay sent, by channel."),
    metric(realtime::RESYNCS, Counter, "resync_required sent (since older than the replay limit, or ahead of the head), by channel."),
    metric(realtime::GAP_FILLS, Counter, "Jumps in a live seq that a socket filled from the store (a message this process never received), by channel."),
    metric(realtime::HEAD_CHECK_CATCH_UPS, Counter, "Sockets that filled up from the store when the head check found their channel behind (a message stored but never published), by channel."),
    metric(realtime::CLOSES, Counter, "WebSockets the server closed, by close code (4008: slow consumer)."),
    metric(realtime::PRESENCE_USERS, Gauge, "Users present on this instance's presence sockets, counted once per project."),
    services(store::POSTGRES_UP, Gauge, "1 while PostgreSQL answers (polled every 250 ms), else 0."),
    services(sample::POOL_CONNECTIONS, Gauge, "Connections the PostgreSQL pool holds open."),
    services(sample::POOL_IDLE, Gauge, "Idle connections in the PostgreSQL pool."),
    services(sample::POOL_MAX, Gauge, "Most connections the PostgreSQL pool opens (DATABASE_POOL_SIZE)."),
    services(sample::POOL_WAITING, Gauge, "Callers waiting for a PostgreSQL connection."),
    services(nats::NATS_UP, Gauge, "1 while the connection to NATS is up, else 0."),
    services(store::LEADER, Gauge, "1 while this process leads the role (relay, projections), else 0."),
    metric(sample::BUILD_INFO, Gauge, "Always 1, labelled with the version, revision and mode (embedded, postgres+nats, postgres)."),
];

/// Gives the installed recorder every metric's help text.
pub(super) fn describe() {
    for m in CATALOGUE {
        match m.kind {
            Counter => metrics::describe_counter!(m.name, m.help),
            Gauge => metrics::describe_gauge!(m.name, m.help),
            Histogram => metrics::describe_histogram!(m.name, m.help),
        }
    }
}
