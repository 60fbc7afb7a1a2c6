//! Events for tests that exercise the store, relay and projections below
//! the HTTP API: real appends through [`EventStore`], no shortcuts.

use chrono::{SubsecRound, Utc};
use ticketflow_domain::event::{Actor, Event, EventMeta};
use ticketflow_domain::project::{Project, ProjectPayload};
use ticketflow_domain::ticket::{Priority, Ticket, TicketPayload};
use ticketflow_domain::{default_statuses, Member, Role};
use ticketflow_store::{Append, EventStore, Loaded, Metadata, StoreError};
use uuid::Uuid;

pub fn actor() -> Actor {
    Actor {
        id: Uuid::from_u128(7),
        username: "alice".into(),
    }
}

pub fn meta() -> EventMeta {
    EventMeta {
        actor: actor(),
        occurred_at: Utc::now().trunc_subsecs(6),
    }
}

/// A member named `username` (also their display name), joining now.
pub fn member(user_id: Uuid, username: &str, role: Role) -> Member {
    Member {
        user_id,
        username: username.into(),
        display_name: username.into(),
        role,
        joined_at: Utc::now(),
    }
}

/// Appends a new project `key` (ProjectCreated, then alice as admin).
pub async fn append_project(store: &dyn EventStore, id: Uuid, key: &str) -> Result<(), StoreError> {
    let member = member(actor().id, "alice", Role::Admin);
    let created = ProjectPayload::ProjectCreated {
        project_id: id,
        key: key.into(),
        name: key.into(),
        statuses: default_statuses(),
    };
    let events = vec![
        Event::new(&meta(), created),
        Event::new(&meta(), ProjectPayload::MemberAdded { member }),
    ];
    let append = Append {
        stream_id: id,
        project_id: id,
        before: Loaded::<Project>::default(),
        events,
        metadata: Metadata::default(),
    };
    store.append_project(append).await.map(|_| ())
}

pub async fn create_project(store: &dyn EventStore, key: &str) -> Uuid {
    let id = Uuid::now_v7();
    append_project(store, id, key)
        .await
        .expect("create project");
    id
}

pub fn created(project_id: Uuid, ticket_id: Uuid) -> Event<TicketPayload> {
    Event::new(
        &meta(),
        TicketPayload::TicketCreated {
            ticket_id,
            project_id,
            number: 0,
            key: String::new(),
            title: "t".into(),
            description: String::new(),
            priority: Priority::Medium,
            status: default_statuses()[0].clone(),
            assignee: None,
            reporter: actor(),
            labels: vec![],
            mentions: vec![],
        },
    )
}

pub fn retitled(n: usize) -> Event<TicketPayload> {
    Event::new(
        &meta(),
        TicketPayload::TicketTitleChanged {
            title: format!("title {n}"),
        },
    )
}

/// Appends `events` to a ticket on top of `before`, returning the new state.
pub async fn append_ticket(
    store: &dyn EventStore,
    project_id: Uuid,
    ticket_id: Uuid,
    before: Loaded<Ticket>,
    events: Vec<Event<TicketPayload>>,
) -> Result<Loaded<Ticket>, StoreError> {
    let append = Append {
        stream_id: ticket_id,
        project_id,
        before,
        events,
        metadata: Metadata::default(),
    };
    let committed = store.append_ticket(append).await?;
    Ok(Loaded {
        version: committed.state.version,
        last_position: committed.last_position(),
        state: committed.state,
        replayed: 0,
    })
}
