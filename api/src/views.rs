//! The JSON shapes of the contract, built from domain state and stored
//! events. Each is serialised straight from its struct, which is also its
//! schema in the OpenAPI description; fields are declared in sorted order,
//! the order clients have always seen.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use ticketflow_domain::project::{Member, Project, Role, Status};
use ticketflow_domain::ticket::{Priority, Ticket};
use ticketflow_domain::Actor;
use ticketflow_projections::queries::Comment;
use ticketflow_store::{Hash, ProjectSummary, StoredEvent, User};
use utoipa::ToSchema;
use uuid::Uuid;

/// A user account.
#[derive(Serialize, ToSchema)]
#[schema(as = User)]
pub struct UserView<'a> {
    display_name: &'a str,
    id: Uuid,
    username: &'a str,
}

pub fn user(u: &User) -> UserView<'_> {
    UserView {
        display_name: &u.display_name,
        id: u.user_id,
        username: &u.username,
    }
}

/// A project, with its workflow statuses.
#[derive(Serialize, ToSchema)]
#[schema(as = Project)]
pub struct ProjectView<'a> {
    created_at: DateTime<Utc>,
    id: Uuid,
    /// `^[A-Z][A-Z0-9]{1,9}$`, the prefix of its tickets' keys.
    key: &'a str,
    name: &'a str,
    statuses: &'a [Status],
}

pub fn project(p: &Project) -> ProjectView<'_> {
    ProjectView {
        created_at: p.created_at,
        id: p.id,
        key: &p.key,
        name: &p.name,
        statuses: &p.statuses,
    }
}

pub fn project_summary(p: &ProjectSummary) -> ProjectView<'_> {
    ProjectView {
        created_at: p.created_at,
        id: p.project_id,
        key: &p.key,
        name: &p.name,
        statuses: &p.statuses,
    }
}

/// A project member.
#[derive(Serialize, ToSchema)]
#[schema(as = Member)]
pub struct MemberView<'a> {
    display_name: &'a str,
    joined_at: DateTime<Utc>,
    role: Role,
    user_id: Uuid,
    username: &'a str,
}

pub fn member(m: &Member) -> MemberView<'_> {
    MemberView {
        display_name: &m.display_name,
        joined_at: m.joined_at,
        role: m.role,
        user_id: m.user_id,
        username: &m.username,
    }
}

/// A ticket. Its `version` is also its `ETag`.
#[derive(Serialize, ToSchema)]
#[schema(as = Ticket)]
pub struct TicketView<'a> {
    #[schema(required)]
    assignee: &'a Option<Actor>,
    created_at: DateTime<Utc>,
    description: &'a str,
    id: Uuid,
    /// `PROJ-42`: the project's key and the ticket's number.
    key: &'a str,
    labels: &'a [String],
    /// Per project, gap-free, never reused.
    number: u64,
    priority: Priority,
    project_id: Uuid,
    #[schema(required)]
    reporter: &'a Option<Actor>,
    #[schema(required)]
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

/// A comment on a ticket.
#[derive(Serialize, ToSchema)]
#[schema(as = Comment)]
pub struct CommentView<'a> {
    author: &'a Actor,
    body: &'a str,
    created_at: DateTime<Utc>,
    id: Uuid,
    ticket_id: Uuid,
}

pub fn comment(c: &Comment) -> CommentView<'_> {
    CommentView {
        author: &c.author,
        body: &c.body,
        created_at: c.created_at,
        id: c.id,
        ticket_id: c.ticket_id,
    }
}

/// The comment a command added.
pub fn added_comment<'a>(
    id: Uuid,
    ticket_id: Uuid,
    author: &'a Actor,
    body: &'a str,
    created_at: DateTime<Utc>,
) -> CommentView<'a> {
    CommentView {
        author,
        body,
        created_at,
        id,
        ticket_id,
    }
}

/// An admin's announcement to the project's members.
#[derive(Serialize, ToSchema)]
#[schema(as = Announcement)]
pub struct AnnouncementView<'a> {
    author: Actor,
    created_at: DateTime<Utc>,
    id: Uuid,
    message: &'a str,
    project_id: Uuid,
    title: &'a str,
}

pub struct NewAnnouncement<'a> {
    pub id: Uuid,
    pub project_id: Uuid,
    pub author: Actor,
    pub title: &'a str,
    pub message: &'a str,
    pub created_at: DateTime<Utc>,
}

pub fn announcement(a: NewAnnouncement<'_>) -> AnnouncementView<'_> {
    AnnouncementView {
        author: a.author,
        created_at: a.created_at,
        id: a.id,
        message: a.message,
        project_id: a.project_id,
        title: a.title,
    }
}

/// An event of a ticket, as `/history` lists it.
#[derive(Serialize, ToSchema)]
#[schema(as = HistoryItem)]
pub struct HistoryItem<'a> {
    actor: &'a Actor,
    /// The event's fields; their layout is the event type's at `schema_version`.
    data: Value,
    event_id: Uuid,
    /// The event's link in the log's hash chain (docs/audit.md): 64 lowercase
    /// hex digits; null on an event stored without one.
    #[schema(value_type = Option<String>, required)]
    hash: Option<Hash>,
    occurred_at: DateTime<Utc>,
    position: i64,
    schema_version: i32,
    /// The event type, PascalCase past tense (`TicketCreated`, ...).
    #[serde(rename = "type")]
    event_type: &'a str,
    version: i64,
}

pub fn history_item(e: &StoredEvent) -> HistoryItem<'_> {
    let (schema_version, data) = current(e);
    HistoryItem {
        actor: &e.actor,
        data,
        event_id: e.event_id,
        hash: e.hash,
        occurred_at: e.occurred_at,
        position: e.position,
        schema_version,
        event_type: &e.event_type,
        version: e.version,
    }
}

/// An event of a project's feed.
#[derive(Serialize, ToSchema)]
#[schema(as = FeedItem)]
pub struct FeedItem<'a> {
    actor: &'a Actor,
    /// The event's fields; their layout is the event type's at `schema_version`.
    data: Value,
    event_id: Uuid,
    /// The event's link in the log's hash chain (docs/audit.md): 64 lowercase
    /// hex digits; null on an event stored without one.
    #[schema(value_type = Option<String>, required)]
    hash: Option<Hash>,
    occurred_at: DateTime<Utc>,
    position: i64,
    project_id: Uuid,
    schema_version: i32,
    /// Null for a project event (members, announcements).
    #[schema(required)]
    ticket_id: Option<Uuid>,
    /// The event type, PascalCase past tense (`TicketCreated`, `MemberAdded`, ...).
    #[serde(rename = "type")]
    event_type: &'a str,
    /// The event's version within its stream (ticket or project).
    version: i64,
}

pub fn feed_item(e: &StoredEvent) -> FeedItem<'_> {
    let (schema_version, data) = current(e);
    FeedItem {
        actor: &e.actor,
        data,
        event_id: e.event_id,
        hash: e.hash,
        occurred_at: e.occurred_at,
        position: e.position,
        project_id: e.project_id,
        schema_version,
        ticket_id: (e.stream_type == "ticket").then_some(e.stream_id),
        event_type: &e.event_type,
        version: e.version,
    }
}

/// An event's data in its type's current layout, and that layout's schema
/// version: old versions are upcast on read (the contract's promise), so a
/// client handles one layout per event type, the one `schemas/` marks
/// current. Data comes as a JSON tree, so its keys come out sorted as they
/// always have (the stored text keeps the database's order and spacing).
/// The text was checked to be JSON when it was stored, so reading it again
/// does not fail; were it to, or an upcaster refuse it, the item shows the
/// data as stored (or `null`) under its stored version.
fn current(e: &StoredEvent) -> (i32, Value) {
    match e.current_data() {
        Ok((version, data)) => (
            version,
            serde_json::from_str(data.get()).unwrap_or_default(),
        ),
        Err(error) => {
            tracing::warn!(position = e.position, %error, "stored event data could not be upcast");
            (e.schema_version, e.data.parse().unwrap_or_default())
        }
    }
}
