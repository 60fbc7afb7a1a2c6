//! The Ticket aggregate: one ticket's fields, assignment, status, comments and
//! deletion. A deleted ticket refuses every command as if it did not exist.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::{Actor, Event, EventMeta, Payload};
use crate::project::{ProjectView, Status};
use crate::{validate, DomainError};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    #[default]
    Medium,
    High,
    Urgent,
}

/// Fields a PATCH may change; `None` leaves a field alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TicketChanges {
    pub title: Option<String>,
    pub description: Option<String>,
    pub priority: Option<Priority>,
    pub labels: Option<Vec<String>>,
    pub status_id: Option<i64>,
    /// `Some(None)` unassigns.
    pub assignee_id: Option<Option<Uuid>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewTicket {
    pub ticket_id: Uuid,
    pub title: String,
    pub description: String,
    pub priority: Priority,
    pub assignee_id: Option<Uuid>,
    pub labels: Vec<String>,
    pub status_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TicketCommand {
    Create {
        meta: EventMeta,
        project: ProjectView,
        ticket: NewTicket,
    },
    Update {
        meta: EventMeta,
        project: ProjectView,
        changes: TicketChanges,
    },
    Comment {
        meta: EventMeta,
        project: ProjectView,
        comment_id: Uuid,
        body: String,
    },
    Delete {
        meta: EventMeta,
        project: ProjectView,
    },
}

impl TicketCommand {
    /// The command's name, as operators count commands by it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Create { .. } => "create_ticket",
            Self::Update { .. } => "update_ticket",
            Self::Comment { .. } => "add_comment",
            Self::Delete { .. } => "delete_ticket",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
#[serde(tag = "type", content = "data")]
pub enum TicketPayload {
    TicketCreated {
        ticket_id: Uuid,
        project_id: Uuid,
        /// Assigned by the event store in the appending transaction
        /// (see [`TicketPayload::assign_number`]); 0 until then.
        number: u64,
        key: String,
        title: String,
        description: String,
        priority: Priority,
        status: Status,
        assignee: Option<Actor>,
        reporter: Actor,
        labels: Vec<String>,
        mentions: Vec<Actor>,
    },
    TicketTitleChanged {
        title: String,
    },
    /// Schema version 2: `added_mentions` are the members the new text
    /// mentions that the old text did not (version 1 called them
    /// `mentions`, the name `TicketCreated` and `CommentAdded` use for
    /// *every* mention; see [`DescriptionChangedV1`]).
    TicketDescriptionChanged {
        description: String,
        added_mentions: Vec<Actor>,
    },
    TicketPriorityChanged {
        priority: Priority,
    },
    TicketLabelsChanged {
        labels: Vec<String>,
    },
    TicketStatusChanged {
        status: Status,
        previous: Status,
    },
    TicketAssigned {
        assignee: Actor,
        previous: Option<Actor>,
    },
    TicketUnassigned {
        previous: Actor,
    },
    CommentAdded {
        comment_id: Uuid,
        body: String,
        mentions: Vec<Actor>,
    },
    TicketDeleted {},
}

impl TicketPayload {
    /// The schema version new events of `event_type` are stored at.
    pub fn schema_version_of(event_type: &str) -> u32 {
        match event_type {
            "TicketDescriptionChanged" => 2,
            _ => 1,
        }
    }

    /// Gives a `TicketCreated` its per-project number and key. Numbers are
    /// allocated where the event is stored, so they are gap-free under
    /// concurrency; other payloads are left alone.
    pub fn assign_number(&mut self, project_key: &str, n: u64) {
        if let Self::TicketCreated { number, key, .. } = self {
            *number = n;
            *key = format!("{project_key}-{n}");
        }
    }
}

impl Payload for TicketPayload {
    fn event_type(&self) -> &'static str {
        match self {
            Self::TicketCreated { .. } => "TicketCreated",
            Self::TicketTitleChanged { .. } => "TicketTitleChanged",
            Self::TicketDescriptionChanged { .. } => "TicketDescriptionChanged",
            Self::TicketPriorityChanged { .. } => "TicketPriorityChanged",
            Self::TicketLabelsChanged { .. } => "TicketLabelsChanged",
            Self::TicketStatusChanged { .. } => "TicketStatusChanged",
            Self::TicketAssigned { .. } => "TicketAssigned",
            Self::TicketUnassigned { .. } => "TicketUnassigned",
            Self::CommentAdded { .. } => "CommentAdded",
            Self::TicketDeleted { .. } => "TicketDeleted",
        }
    }

    fn schema_version(&self) -> u32 {
        Self::schema_version_of(self.event_type())
    }
}

/// `TicketDescriptionChanged` as schema version 1 stored it. Kept so that
/// events stored then stay readable ([`crate::event::upcast`]) and their
/// schema stays published (`schemas/TicketDescriptionChanged.v1.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
pub struct DescriptionChangedV1 {
    pub description: String,
    /// Only the members newly mentioned, despite the name.
    pub mentions: Vec<Actor>,
}

impl DescriptionChangedV1 {
    /// The same change in the current layout: a rename, nothing lost.
    pub fn upcast(self) -> TicketPayload {
        TicketPayload::TicketDescriptionChanged {
            description: self.description,
            added_mentions: self.mentions,
        }
    }
}

pub type TicketEvent = Event<TicketPayload>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: Uuid,
    pub project_id: Uuid,
    pub number: u64,
    pub key: String,
    pub title: String,
    pub description: String,
    pub priority: Priority,
    pub status: Option<Status>,
    pub assignee: Option<Actor>,
    pub reporter: Option<Actor>,
    pub labels: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Number of events applied; the stream's version and the ETag.
    pub version: u64,
    pub deleted: bool,
}

impl Ticket {
    pub fn exists(&self) -> bool {
        self.version > 0 && !self.deleted
    }

    fn require_live(&self, project: &ProjectView, actor: &Actor) -> Result<(), DomainError> {
        if !self.exists() {
            return Err(DomainError::NotFound { what: "ticket" });
        }
        require_member(project, actor)
    }

    fn create(
        &self,
        meta: EventMeta,
        project: ProjectView,
        t: NewTicket,
    ) -> Result<Vec<TicketEvent>, DomainError> {
        if self.version > 0 {
            return Err(DomainError::conflict(
                "ticket_exists",
                "ticket already exists",
            ));
        }
        require_member(&project, &meta.actor)?;
        validate::text("title", &t.title, 1, validate::TITLE_MAX)?;
        validate::text("description", &t.description, 0, validate::DESCRIPTION_MAX)?;
        let labels = validate::labels(&t.labels)?;
        let status = match t.status_id {
            Some(id) => project.status(id)?,
            None => project.first_status()?,
        }
        .clone();
        let assignee = t.assignee_id.map(|id| assignee(&project, id)).transpose()?;
        let mentions = project.mentions(&t.description, &meta.actor);
        let payload = TicketPayload::TicketCreated {
            ticket_id: t.ticket_id,
            project_id: project.project_id,
            number: 0,
            key: String::new(),
            title: t.title,
            description: t.description,
            priority: t.priority,
            status,
            assignee,
            reporter: meta.actor.clone(),
            labels,
            mentions,
        };
        Ok(vec![Event::new(&meta, payload)])
    }

    /// One event per field that really changes, in a fixed field order; all
    /// fields are validated before any event is produced.
    fn update(
        &self,
        meta: EventMeta,
        project: ProjectView,
        c: TicketChanges,
    ) -> Result<Vec<TicketEvent>, DomainError> {
        self.require_live(&project, &meta.actor)?;
        let mut out = Vec::new();
        if let Some(title) = c.title.filter(|t| *t != self.title) {
            validate::text("title", &title, 1, validate::TITLE_MAX)?;
            out.push(TicketPayload::TicketTitleChanged { title });
        }
        if let Some(description) = c.description.filter(|d| *d != self.description) {
            validate::text("description", &description, 0, validate::DESCRIPTION_MAX)?;
            let before = project.mentions(&self.description, &meta.actor);
            let added_mentions = project
                .mentions(&description, &meta.actor)
                .into_iter()
                .filter(|m| !before.contains(m))
                .collect();
            out.push(TicketPayload::TicketDescriptionChanged {
                description,
                added_mentions,
            });
        }
        if let Some(priority) = c.priority.filter(|p| *p != self.priority) {
            out.push(TicketPayload::TicketPriorityChanged { priority });
        }
        if let Some(labels) = c.labels {
            let labels = validate::labels(&labels)?;
            if labels != self.labels {
                out.push(TicketPayload::TicketLabelsChanged { labels });
            }
        }
        if let Some(status_id) = c.status_id {
            let status = project.status(status_id)?.clone();
            if let Some(previous) = self.status.clone().filter(|s| s.id != status_id) {
                out.push(TicketPayload::TicketStatusChanged { status, previous });
            }
        }
        if let Some(change) = c.assignee_id {
            out.extend(self.reassign(&project, change)?);
        }
        Ok(out.into_iter().map(|p| Event::new(&meta, p)).collect())
    }

    fn reassign(
        &self,
        project: &ProjectView,
        to: Option<Uuid>,
    ) -> Result<Option<TicketPayload>, DomainError> {
        let previous = self.assignee.clone();
        match to {
            Some(id) if previous.as_ref().is_some_and(|p| p.id == id) => Ok(None),
            Some(id) => Ok(Some(TicketPayload::TicketAssigned {
                assignee: assignee(project, id)?,
                previous,
            })),
            None => Ok(previous.map(|previous| TicketPayload::TicketUnassigned { previous })),
        }
    }

    fn comment(
        &self,
        meta: EventMeta,
        project: ProjectView,
        comment_id: Uuid,
        body: String,
    ) -> Result<Vec<TicketEvent>, DomainError> {
        self.require_live(&project, &meta.actor)?;
        validate::text("body", &body, 1, validate::COMMENT_MAX)?;
        let mentions = project.mentions(&body, &meta.actor);
        Ok(vec![Event::new(
            &meta,
            TicketPayload::CommentAdded {
                comment_id,
                body,
                mentions,
            },
        )])
    }

    fn delete(
        &self,
        meta: EventMeta,
        project: ProjectView,
    ) -> Result<Vec<TicketEvent>, DomainError> {
        self.require_live(&project, &meta.actor)?;
        Ok(vec![Event::new(&meta, TicketPayload::TicketDeleted {})])
    }

    /// Decides a command against the current state, without changing it.
    pub fn decide(&self, command: TicketCommand) -> Result<Vec<TicketEvent>, DomainError> {
        match command {
            TicketCommand::Create {
                meta,
                project,
                ticket,
            } => self.create(meta, project, ticket),
            TicketCommand::Update {
                meta,
                project,
                changes,
            } => self.update(meta, project, changes),
            TicketCommand::Comment {
                meta,
                project,
                comment_id,
                body,
            } => self.comment(meta, project, comment_id, body),
            TicketCommand::Delete { meta, project } => self.delete(meta, project),
        }
    }
}

fn require_member(project: &ProjectView, actor: &Actor) -> Result<(), DomainError> {
    match project.member(actor.id) {
        Some(_) => Ok(()),
        None => Err(DomainError::Forbidden("not a member of this project")),
    }
}

fn assignee(project: &ProjectView, user_id: Uuid) -> Result<Actor, DomainError> {
    project
        .member(user_id)
        .cloned()
        .ok_or_else(|| DomainError::invalid("assignee_id", "assignee must be a project member"))
}

impl Aggregate for Ticket {
    const TYPE: &'static str = "ticket";
    type Command = TicketCommand;
    type Event = TicketEvent;
    type Error = DomainError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _service: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.version += 1;
        self.updated_at = event.meta.occurred_at;
        match event.payload {
            TicketPayload::TicketCreated {
                ticket_id,
                project_id,
                number,
                key,
                title,
                description,
                priority,
                status,
                assignee,
                reporter,
                labels,
                mentions: _,
            } => {
                *self = Ticket {
                    id: ticket_id,
                    project_id,
                    number,
                    key,
                    title,
                    description,
                    priority,
                    status: Some(status),
                    assignee,
                    reporter: Some(reporter),
                    labels,
                    created_at: event.meta.occurred_at,
                    updated_at: event.meta.occurred_at,
                    version: self.version,
                    deleted: false,
                };
            }
            TicketPayload::TicketTitleChanged { title } => self.title = title,
            TicketPayload::TicketDescriptionChanged { description, .. } => {
                self.description = description
            }
            TicketPayload::TicketPriorityChanged { priority } => self.priority = priority,
            TicketPayload::TicketLabelsChanged { labels } => self.labels = labels,
            TicketPayload::TicketStatusChanged { status, .. } => self.status = Some(status),
            TicketPayload::TicketAssigned { assignee, .. } => self.assignee = Some(assignee),
            TicketPayload::TicketUnassigned { .. } => self.assignee = None,
            TicketPayload::CommentAdded { .. } => {}
            TicketPayload::TicketDeleted {} => self.deleted = true,
        }
    }
}
