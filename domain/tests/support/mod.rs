//! Shared fixtures: a fixed cast of users, a fixed clock, a project with three
//! members (alice the admin, bob, carol; dave is an outsider), builders for
//! the commands and events the tests use, and [`Case`]: one named
//! given/when/then check, of which the rule tests make tables.
#![allow(dead_code)]

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::TestFramework;
use cqrs_es::Aggregate;
use ticketflow_domain::{
    default_statuses, Actor, DomainError, Event, EventMeta, Member, NewTicket, Payload, Priority,
    ProjectPayload, ProjectView, Role, Status, TicketChanges, TicketCommand, TicketEvent,
    TicketPayload,
};
use uuid::Uuid;

pub const PROJECT_ID: Uuid = Uuid::from_u128(0xA0);
pub const TICKET_ID: Uuid = Uuid::from_u128(0xB0);
pub const COMMENT_ID: Uuid = Uuid::from_u128(0xC0);
pub const PROJECT_KEY: &str = "PROJ";

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

pub fn meta(actor: &Actor) -> EventMeta {
    meta_at(actor, 0)
}

/// An event by `actor` at the test epoch.
pub fn event<P: Payload>(actor: &Actor, payload: P) -> Event<P> {
    Event::new(&meta(actor), payload)
}

/// `n` copies of `c`.
pub fn chars(c: char, n: usize) -> String {
    std::iter::repeat_n(c, n).collect()
}

pub fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Rebuilds an aggregate from its events.
pub fn replay<A: Aggregate>(events: Vec<A::Event>) -> A {
    let mut aggregate = A::default();
    for event in events {
        aggregate.apply(event);
    }
    aggregate
}

/// What a command must come to. Errors are checked by the rule broken (the
/// field, the conflict code, the missing thing), not by their wording.
#[derive(Debug)]
pub enum Then<E> {
    Events(Vec<E>),
    Invalid(&'static str),
    Conflict(&'static str),
    Forbidden,
    NotFound(&'static str),
}

impl<E> Then<E> {
    pub fn no_events() -> Self {
        Then::Events(vec![])
    }
}

/// One named given/when/then case of an aggregate's rules; a failure names
/// the case.
pub struct Case<A: Aggregate> {
    pub name: String,
    pub given: Vec<A::Event>,
    pub when: A::Command,
    pub then: Then<A::Event>,
}

impl<A> Case<A>
where
    A: Aggregate<Services = (), Error = DomainError>,
    A::Event: PartialEq + std::fmt::Debug,
{
    pub fn new(
        name: impl Into<String>,
        given: Vec<A::Event>,
        when: A::Command,
        then: Then<A::Event>,
    ) -> Self {
        Self {
            name: name.into(),
            given,
            when,
            then,
        }
    }

    /// Runs the command on the aggregate rebuilt from `given` (through
    /// cqrs-es's `TestFramework`) and checks the outcome.
    pub fn check(self) {
        let Self {
            name,
            given,
            when,
            then,
        } = self;
        let result = TestFramework::<A>::with(())
            .given(given)
            .when(when)
            .inspect_result();
        match (then, result) {
            (Then::Events(expected), Ok(events)) => {
                assert_eq!(events, expected, "case {name:?}: events")
            }
            (Then::Invalid(expected), Err(DomainError::Invalid { field, .. })) => {
                assert_eq!(field, expected, "case {name:?}: invalid field")
            }
            (Then::Conflict(expected), Err(DomainError::Conflict { code, .. })) => {
                assert_eq!(code, expected, "case {name:?}: conflict code")
            }
            (Then::Forbidden, Err(DomainError::Forbidden(_))) => {}
            (Then::NotFound(expected), Err(DomainError::NotFound { what })) => {
                assert_eq!(what, expected, "case {name:?}: not found")
            }
            (then, got) => panic!("case {name:?}: expected {then:?}, got {got:?}"),
        }
    }
}

/// Checks every case; the first failure names its case.
pub fn check_all<A>(cases: Vec<Case<A>>)
where
    A: Aggregate<Services = (), Error = DomainError>,
    A::Event: PartialEq + std::fmt::Debug,
{
    for case in cases {
        case.check();
    }
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
            ticket_id: TICKET_ID,
            project_id: PROJECT_ID,
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
