//! The JSON shapes of the contract, built from domain state and stored events.

use serde_json::{json, Value};
use ticketflow_domain::project::{Member, Project, Role};
use ticketflow_domain::ticket::Ticket;
use ticketflow_projections::queries::Comment;
use ticketflow_store::{ProjectSummary, StoredEvent};

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

pub fn ticket(t: &Ticket) -> Value {
    json!({
        "id": t.id,
        "project_id": t.project_id,
        "key": t.key,
        "number": t.number,
        "title": t.title,
        "description": t.description,
        "priority": t.priority,
        "status": t.status,
        "assignee": t.assignee,
        "reporter": t.reporter,
        "labels": t.labels,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
        "version": t.version,
    })
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
