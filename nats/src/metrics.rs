//! What the relays and the NATS connection tell operators, through the
//! `metrics` facade. The embedded mode's local relay records the same names
//! as the JetStream relay.

/// Events published by the relay (its rate is the publish rate).
pub const RELAY_PUBLISHED: &str = "ticketflow_relay_published_events_total";
/// The log position of the last event the relay published.
pub const RELAY_POSITION: &str = "ticketflow_relay_position";
/// The log's head minus the relay's position: events committed but not
/// yet published.
pub const RELAY_LAG: &str = "ticketflow_relay_lag_events";
/// 1 while the connection to NATS is up, else 0.
pub const NATS_UP: &str = "ticketflow_nats_up";

/// The relay published `events`, up to `position`; the log is at `head`.
pub(crate) fn relayed(events: usize, position: i64, head: i64) {
    metrics::counter!(RELAY_PUBLISHED).increment(events as u64);
    relay_at(position, head);
}

/// The relay stands at `position` while the log is at `head`.
pub(crate) fn relay_at(position: i64, head: i64) {
    metrics::gauge!(RELAY_POSITION).set(position as f64);
    metrics::gauge!(RELAY_LAG).set(head.saturating_sub(position).max(0) as f64);
}

/// This process no longer leads the relay: it has no lag of its own.
pub(crate) fn relay_standing_by() {
    metrics::gauge!(RELAY_LAG).set(0.0);
}
