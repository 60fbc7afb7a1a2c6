//! The ticketflow domain: aggregates, commands, events and the rules that decide
//! between them. Pure: no I/O, no clock, no randomness. Whoever sends a command
//! supplies its actor, time and ids, so the same command on the same history
//! always yields the same events.
//!
//! Two aggregates carry the model. A [`Project`] owns its members, their roles and its
//! statuses. A [`Ticket`] owns everything about one ticket, including its
//! comments; it validates against a [`ProjectView`] handed in with each command,
//! since a ticket's rules (assignee must be a member, status must exist) depend
//! on its project. A third, small one, the [`Inbox`], holds the notices an
//! operator sends one user.

pub mod error;
pub mod event;
pub mod event_types;
pub mod inbox;
pub mod mention;
pub mod notification;
pub mod project;
#[cfg(feature = "schemas")]
pub mod schemas;
pub mod ticket;
pub mod user;
pub mod validate;

pub use error::DomainError;
pub use event::{Actor, Event, EventMeta, Payload};
pub use inbox::{Inbox, InboxCommand, InboxEvent, InboxPayload};
pub use notification::{announcement_notices, inbox_notices, notices, Notice, NotificationType};
pub use project::{
    default_statuses, Member, NewMember, Project, ProjectCommand, ProjectEvent, ProjectPayload,
    ProjectView, Role, Status,
};
pub use ticket::{
    NewTicket, Priority, Ticket, TicketChanges, TicketCommand, TicketEvent, TicketPayload,
};
