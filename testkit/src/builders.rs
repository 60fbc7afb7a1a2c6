//! Builders for the commands and events the rule tests use: a project PROJ
//! whose members are alice (the admin), bob and carol, a ticket in it, and
//! the commands on that ticket, by alice unless another actor is named.

use ticketflow_domain::{
    default_statuses, Actor, Event, Member, NewTicket, Priority, ProjectPayload, ProjectView, Role,
    Status, TicketChanges, TicketCommand, TicketEvent, TicketPayload,
};
use uuid::Uuid;

use crate::cast::{alice, at, bob, carol, event, meta};

pub const PROJECT_ID: Uuid = Uuid::from_u128(0xA0);
pub const TICKET_ID: Uuid = Uuid::from_u128(0xB0);
pub const COMMENT_ID: Uuid = Uuid::from_u128(0xC0);
pub const PROJECT_KEY: &str = "PROJ";

/// `n` copies of `c`.
pub fn chars(c: char, n: usize) -> String {
    std::iter::repeat_n(c, n).collect()
}

pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

pub fn status(id: i64) -> Status {
    default_statuses()
        .into_iter()
        .find(|s| s.id == id)
        .expect("a default status")
}

pub fn member(actor: &Actor, role: Role) -> Member {
    Member {
        user_id: actor.id,
        username: actor.username.clone(),
        display_name: display_name(actor),
        role,
        joined_at: at(0),
    }
}

pub fn display_name(actor: &Actor) -> String {
    let mut name = actor.username.clone();
    name[..1].make_ascii_uppercase();
    name
}

/// The two events of a project created by alice.
pub fn project_created() -> Vec<Event<ProjectPayload>> {
    vec![
        event(
            &alice(),
            ProjectPayload::ProjectCreated {
                project_id: PROJECT_ID,
                key: PROJECT_KEY.into(),
                name: "Project".into(),
                statuses: default_statuses(),
            },
        ),
        event(
            &alice(),
            ProjectPayload::MemberAdded {
                member: member(&alice(), Role::Admin),
            },
        ),
    ]
}

pub fn member_added(actor: &Actor, role: Role) -> Event<ProjectPayload> {
    event(
        &alice(),
        ProjectPayload::MemberAdded {
            member: member(actor, role),
        },
    )
}

/// The ticket rules' view of the project: alice, bob and carol are members.
pub fn view() -> ProjectView {
    ProjectView {
        project_id: PROJECT_ID,
        key: PROJECT_KEY.into(),
        statuses: default_statuses(),
        members: vec![alice(), bob(), carol()],
    }
}

/// The plainest valid new ticket.
pub fn new_ticket() -> NewTicket {
    NewTicket {
        ticket_id: TICKET_ID,
        title: "Fix login".into(),
        description: String::new(),
        priority: Priority::Medium,
        assignee_id: None,
        labels: vec![],
        status_id: None,
    }
}

/// The fields of a `TicketCreated` that a test may vary; the default matches
/// alice creating [`new_ticket`].
pub struct Created {
    pub ticket_id: Uuid,
    pub project_id: Uuid,
    pub title: String,
    pub description: String,
    pub priority: Priority,
    pub status: Status,
    pub assignee: Option<Actor>,
    pub labels: Vec<String>,
    pub mentions: Vec<Actor>,
}

impl Default for Created {
    fn default() -> Self {
        Self {
            ticket_id: TICKET_ID,
            project_id: PROJECT_ID,
            title: "Fix login".into(),
            description: String::new(),
            priority: Priority::Medium,
            status: status(1),
            assignee: None,
            labels: vec![],
            mentions: vec![],
        }
    }
}

impl Created {
    pub fn payload(self) -> TicketPayload {
        TicketPayload::TicketCreated {
            ticket_id: self.ticket_id,
            project_id: self.project_id,
            number: 0,
            key: String::new(),
            title: self.title,
            description: self.description,
            priority: self.priority,
            status: self.status,
            assignee: self.assignee,
            reporter: alice(),
            labels: self.labels,
            mentions: self.mentions,
        }
    }

    pub fn event(self) -> TicketEvent {
        event(&alice(), self.payload())
    }
}

/// alice created the plainest ticket.
pub fn ticket_created() -> TicketEvent {
    Created::default().event()
}

/// alice created a ticket whose description "@bob" mentions bob.
pub fn created_mentioning_bob() -> TicketEvent {
    Created {
        description: "@bob".into(),
        mentions: vec![bob()],
        ..Created::default()
    }
    .event()
}

pub fn create(ticket: NewTicket) -> TicketCommand {
    create_by(&alice(), ticket)
}

pub fn create_by(actor: &Actor, ticket: NewTicket) -> TicketCommand {
    TicketCommand::Create {
        meta: meta(actor),
        project: view(),
        ticket,
    }
}

pub fn update(changes: TicketChanges) -> TicketCommand {
    update_by(&alice(), changes)
}

pub fn update_by(actor: &Actor, changes: TicketChanges) -> TicketCommand {
    TicketCommand::Update {
        meta: meta(actor),
        project: view(),
        changes,
    }
}

pub fn comment(body: &str) -> TicketCommand {
    comment_by(&alice(), body)
}

pub fn comment_by(actor: &Actor, body: &str) -> TicketCommand {
    TicketCommand::Comment {
        meta: meta(actor),
        project: view(),
        comment_id: COMMENT_ID,
        body: body.into(),
    }
}

pub fn delete() -> TicketCommand {
    delete_by(&alice())
}

pub fn delete_by(actor: &Actor) -> TicketCommand {
    TicketCommand::Delete {
        meta: meta(actor),
        project: view(),
    }
}
