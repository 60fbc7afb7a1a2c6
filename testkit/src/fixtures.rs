//! Events for tests that exercise the store, relay and projections below
//! the HTTP API: real appends through [`EventStore`], no shortcuts. The
//! actor is alice ([`crate::cast`]), the clock the wall clock.

use ticketflow_domain::event::Event;
use ticketflow_domain::project::{Project, ProjectPayload};
use ticketflow_domain::ticket::{Ticket, TicketPayload};
use ticketflow_domain::{default_statuses, Role};
use ticketflow_store::{Append, EventStore, Loaded, Metadata, StoreError};
use uuid::Uuid;

use crate::builders::{member, Created};
use crate::cast::{alice, meta_now};

/// Appends a new project `key` (ProjectCreated, then alice as admin).
pub async fn append_project(store: &dyn EventStore, id: Uuid, key: &str) -> Result<(), StoreError> {
    let created = ProjectPayload::ProjectCreated {
        project_id: id,
        key: key.into(),
        name: key.into(),
        statuses: default_statuses(),
    };
    let added = ProjectPayload::MemberAdded {
        member: member(&alice(), Role::Admin),
    };
    let events = vec![
        Event::new(&meta_now(&alice()), created),
        Event::new(&meta_now(&alice()), added),
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

/// Appends one event to a project, on top of its current state.
pub async fn change_project(store: &dyn EventStore, project_id: Uuid, payload: ProjectPayload) {
    let before = store.load_project(project_id).await.expect("load project");
    let append = Append {
        stream_id: project_id,
        project_id,
        before,
        events: vec![Event::new(&meta_now(&alice()), payload)],
        metadata: Metadata::default(),
    };
    store.append_project(append).await.expect("change project");
}

/// alice creates ticket `ticket_id`, titled "t", in `project_id`.
pub fn created(project_id: Uuid, ticket_id: Uuid) -> Event<TicketPayload> {
    let payload = Created {
        ticket_id,
        project_id,
        title: "t".into(),
        ..Created::default()
    }
    .payload();
    Event::new(&meta_now(&alice()), payload)
}

pub fn retitled(n: usize) -> Event<TicketPayload> {
    Event::new(
        &meta_now(&alice()),
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

/// Appends ticket `ticket_id`'s creation ([`created`]) as a new stream.
pub async fn append_created(
    store: &dyn EventStore,
    project_id: Uuid,
    ticket_id: Uuid,
) -> Result<Loaded<Ticket>, StoreError> {
    let events = vec![created(project_id, ticket_id)];
    append_ticket(store, project_id, ticket_id, Loaded::default(), events).await
}

/// A new ticket in `project_id`: its id and its state after creation.
pub async fn create_ticket(store: &dyn EventStore, project_id: Uuid) -> (Uuid, Loaded<Ticket>) {
    let id = Uuid::now_v7();
    let state = append_created(store, project_id, id)
        .await
        .expect("create ticket");
    (id, state)
}
