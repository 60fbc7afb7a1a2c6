//! What both backends need to know about the kinds of stream, and the
//! small conversions they share.

use cqrs_es::Aggregate;
use serde::Serialize;
use ticketflow_domain::event::{Event, Payload};
use ticketflow_domain::inbox::{Inbox, InboxPayload};
use ticketflow_domain::project::{Project, ProjectPayload, Role};
use ticketflow_domain::ticket::Ticket;

/// An event row's columns, in the order both backends' row decoders read
/// them.
pub(crate) const EVENT_COLUMNS: &str = "position, event_id, stream_id, stream_type, project_id, \
     version, seq, event_type, schema_version, data, metadata, occurred_at, hash";

/// What differs between the two kinds of stream when loading and appending.
pub(crate) trait StreamKind:
    Aggregate<Event = Event<Self::Payload>> + Clone + Serialize
{
    type Payload: Payload;
    const STREAM_TYPE: &'static str;
}

impl StreamKind for Ticket {
    type Payload = ticketflow_domain::ticket::TicketPayload;
    const STREAM_TYPE: &'static str = "ticket";
}

impl StreamKind for Project {
    type Payload = ProjectPayload;
    const STREAM_TYPE: &'static str = "project";
}

/// A user's operator notices (see [`ticketflow_domain::inbox`]): no project
/// row, no seq, logged under the nil project id.
impl StreamKind for Inbox {
    type Payload = InboxPayload;
    const STREAM_TYPE: &'static str = "inbox";
}

/// The state after `events`.
pub(crate) fn apply_all<A: Aggregate>(mut state: A, events: &[A::Event]) -> A {
    for event in events {
        state.apply(event.clone());
    }
    state
}

/// True when moving a stream from `from` to `to` crosses a multiple of
/// [`crate::SNAPSHOT_EVERY`], so a snapshot is due.
pub(crate) fn snapshot_due(from: i64, to: i64) -> bool {
    to as u64 / crate::SNAPSHOT_EVERY > from as u64 / crate::SNAPSHOT_EVERY
}

/// A member's role as stored in the membership index.
pub(crate) fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::Member => "member",
    }
}

pub(crate) fn parse_role(role: &str) -> Role {
    if role == "admin" {
        Role::Admin
    } else {
        Role::Member
    }
}
