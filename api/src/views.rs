//! The JSON shapes of the contract, built from domain state and stored events.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use ticketflow_domain::project::{Member, Project, Role, Status};
use ticketflow_domain::ticket::{Priority, Ticket};
use ticketflow_domain::Actor;
use ticketflow_projections::queries::Comment;
use ticketflow_store::{ProjectSummary, StoredEvent};
use uuid::Uuid;

pub fn project(p: &Project) -> Value {
    json!({
        "id": p.id,
        "key": p.key,
        "name": p.name,
        "statuses": p.statuses,
        "created_at": p.created_at,
    })
}

pub fn project_summary(p: &ProjectSummary) -> Value {
    json!({
        "id": p.project_id,
        "key": p.key,
        "name": p.name,
        "statuses": p.statuses,
        "created_at": p.created_at,
    })
}

pub fn member(m: &Member) -> Value {
    json!({
        "user_id": m.user_id,
        "username": m.username,
        "display_name": m.display_name,
        "role": match m.role { Role::Admin => "admin", Role::Member => "member" },
        "joined_at": m.joined_at,
    })
}

/// A ticket as the contract shows it. Serialised straight from the state
/// (every command answers with one, so no JSON tree is built in between),
/// with its keys in the order `json!` gives the other shapes: sorted.
#[derive(Serialize)]
pub struct TicketView<'a> {
    assignee: &'a Option<Actor>,
    created_at: DateTime<Utc>,
    description: &'a str,
    id: Uuid,
    key: &'a str,
    labels: &'a [String],
    number: u64,
    priority: Priority,
    project_id: Uuid,
    reporter: &'a Option<Actor>,
    status: &'a Option<Status>,
    title: &'a str,
    updated_at: DateTime<Utc>,
    version: u64,
}

pub fn ticket(t: &Ticket) -> TicketView<'_> {
    TicketView {
        assignee: &t.assignee,
        created_at: t.created_at,
        description: &t.description,
        id: t.id,
        key: &t.key,
        labels: &t.labels,
        number: t.number,
        priority: t.priority,
        project_id: t.project_id,
        reporter: &t.reporter,
        status: &t.status,
        title: &t.title,
        updated_at: t.updated_at,
        version: t.version,
    }
}

pub fn comment(c: &Comment) -> Value {
    json!({
        "id": c.id,
        "ticket_id": c.ticket_id,
        "author": c.author,
        "body": c.body,
        "created_at": c.created_at,
    })
}

/// An item of `/history`.
pub fn history_item(e: &StoredEvent) -> Value {
    json!({
        "event_id": e.event_id,
        "position": e.position,
        "version": e.version,
        "type": e.event_type,
        "schema_version": e.schema_version,
        "actor": e.actor,
        "occurred_at": e.occurred_at,
        "data": e.data,
    })
}
