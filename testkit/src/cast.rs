//! The cast and the clock every test shares: alice (the admin and the usual
//! actor), bob and carol (members), dave (never a member); a fixed test epoch
//! for rule tests and the wall clock, cut to what PostgreSQL keeps, for
//! tests that store events.

use chrono::{DateTime, SubsecRound, TimeZone, Utc};
use ticketflow_domain::{Actor, Event, EventMeta, Payload};
use uuid::Uuid;

fn user(n: u128, username: &str) -> Actor {
    Actor {
        id: Uuid::from_u128(n),
        username: username.into(),
    }
}

/// The project's admin and the usual actor.
pub fn alice() -> Actor {
    user(1, "alice")
}

pub fn bob() -> Actor {
    user(2, "bob")
}

pub fn carol() -> Actor {
    user(3, "carol")
}

/// Never a member of the project.
pub fn dave() -> Actor {
    user(4, "dave")
}

/// A fixed instant, `secs` seconds after the test epoch.
pub fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
}

pub fn meta_at(actor: &Actor, secs: i64) -> EventMeta {
    EventMeta {
        actor: actor.clone(),
        occurred_at: at(secs),
    }
}

/// `actor` at the test epoch.
pub fn meta(actor: &Actor) -> EventMeta {
    meta_at(actor, 0)
}

/// `actor` now, to the microsecond (what PostgreSQL keeps), for events
/// that are stored and read back.
pub fn meta_now(actor: &Actor) -> EventMeta {
    EventMeta {
        actor: actor.clone(),
        occurred_at: Utc::now().trunc_subsecs(6),
    }
}

/// An event by `actor` at the test epoch.
pub fn event<P: Payload>(actor: &Actor, payload: P) -> Event<P> {
    Event::new(&meta(actor), payload)
}
