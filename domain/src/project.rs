//! The Project aggregate: its key and name, members with roles, and statuses.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::{Actor, Event, EventMeta, Payload};
use crate::{mention, validate, DomainError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
pub struct Status {
    pub id: i64,
    pub name: String,
    pub color: String,
}

/// Every project starts with these statuses; new tickets take the first.
pub fn default_statuses() -> Vec<Status> {
    [
        (1, "Open", "#1890ff"),
        (2, "In Progress", "#faad14"),
        (3, "Done", "#52c41a"),
    ]
    .into_iter()
    .map(|(id, name, color)| Status {
        id,
        name: name.into(),
        color: color.into(),
    })
    .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Member,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
pub struct Member {
    pub user_id: Uuid,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

impl Member {
    pub fn actor(&self) -> Actor {
        Actor {
            id: self.user_id,
            username: self.username.clone(),
        }
    }
}

/// A user to be added, as the account store knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMember {
    pub user_id: Uuid,
    pub username: String,
    pub display_name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProjectCommand {
    /// The actor becomes the project's admin and first member.
    Create {
        meta: EventMeta,
        project_id: Uuid,
        key: String,
        name: String,
        display_name: String,
    },
    AddMember {
        meta: EventMeta,
        user: NewMember,
    },
    RemoveMember {
        meta: EventMeta,
        user_id: Uuid,
    },
    /// An admin tells every other member something (a `general` notification).
    PostAnnouncement {
        meta: EventMeta,
        announcement_id: Uuid,
        title: String,
        message: String,
    },
}

impl ProjectCommand {
    /// The command's name, as operators count commands by it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Create { .. } => "create_project",
            Self::AddMember { .. } => "add_member",
            Self::RemoveMember { .. } => "remove_member",
            Self::PostAnnouncement { .. } => "post_announcement",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
#[serde(tag = "type", content = "data")]
pub enum ProjectPayload {
    ProjectCreated {
        project_id: Uuid,
        key: String,
        name: String,
        statuses: Vec<Status>,
    },
    MemberAdded {
        member: Member,
    },
    MemberRemoved {
        user_id: Uuid,
        username: String,
    },
    /// `recipients` are the members other than the author when it was
    /// posted, decided here like a ticket event's mentions, so the
    /// notifications projection needs no member list of its own and a replay
    /// notifies exactly the same users.
    AnnouncementPosted {
        announcement_id: Uuid,
        title: String,
        message: String,
        recipients: Vec<Actor>,
    },
}

impl Payload for ProjectPayload {
    fn event_type(&self) -> &'static str {
        match self {
            Self::ProjectCreated { .. } => "ProjectCreated",
            Self::MemberAdded { .. } => "MemberAdded",
            Self::MemberRemoved { .. } => "MemberRemoved",
            Self::AnnouncementPosted { .. } => "AnnouncementPosted",
        }
    }
}

pub type ProjectEvent = Event<ProjectPayload>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Project {
    pub id: Uuid,
    pub key: String,
    pub name: String,
    pub statuses: Vec<Status>,
    pub members: BTreeMap<Uuid, Member>,
    pub created_at: DateTime<Utc>,
    /// Number of events applied; the stream's version.
    pub version: u64,
}

impl Project {
    pub fn exists(&self) -> bool {
        self.version > 0
    }

    pub fn member(&self, user_id: Uuid) -> Option<&Member> {
        self.members.get(&user_id)
    }

    pub fn is_admin(&self, user_id: Uuid) -> bool {
        self.member(user_id).is_some_and(|m| m.role == Role::Admin)
    }

    /// What a ticket command needs to know of its project.
    pub fn view(&self) -> ProjectView {
        ProjectView {
            project_id: self.id,
            key: self.key.clone(),
            statuses: self.statuses.clone(),
            members: self.members.values().map(Member::actor).collect(),
        }
    }

    fn create(
        &self,
        meta: EventMeta,
        id: Uuid,
        key: String,
        name: String,
        display_name: String,
    ) -> Result<Vec<ProjectEvent>, DomainError> {
        if self.exists() {
            return Err(DomainError::conflict(
                "project_exists",
                "project already exists",
            ));
        }
        validate::project_key(&key)?;
        validate::text("name", &name, 1, validate::PROJECT_NAME_MAX)?;
        let admin = Member {
            user_id: meta.actor.id,
            username: meta.actor.username.clone(),
            display_name,
            role: Role::Admin,
            joined_at: meta.occurred_at,
        };
        Ok(vec![
            Event::new(
                &meta,
                ProjectPayload::ProjectCreated {
                    project_id: id,
                    key,
                    name,
                    statuses: default_statuses(),
                },
            ),
            Event::new(&meta, ProjectPayload::MemberAdded { member: admin }),
        ])
    }

    fn require_admin(&self, actor: &Actor) -> Result<(), DomainError> {
        self.require_admin_to(actor, "only a project admin may change members")
    }

    /// Unknown project first (404), then the role (403), before any field.
    fn require_admin_to(&self, actor: &Actor, refusal: &'static str) -> Result<(), DomainError> {
        if !self.exists() {
            return Err(DomainError::NotFound { what: "project" });
        }
        if self.is_admin(actor.id) {
            Ok(())
        } else {
            Err(DomainError::Forbidden(refusal))
        }
    }

    fn post_announcement(
        &self,
        meta: EventMeta,
        announcement_id: Uuid,
        title: String,
        message: String,
    ) -> Result<Vec<ProjectEvent>, DomainError> {
        self.require_admin_to(&meta.actor, "only a project admin may post announcements")?;
        validate::notice_text(&title, &message)?;
        let recipients = self
            .members
            .values()
            .filter(|m| m.user_id != meta.actor.id)
            .map(Member::actor)
            .collect();
        Ok(vec![Event::new(
            &meta,
            ProjectPayload::AnnouncementPosted {
                announcement_id,
                title,
                message,
                recipients,
            },
        )])
    }

    fn add_member(
        &self,
        meta: EventMeta,
        user: NewMember,
    ) -> Result<Vec<ProjectEvent>, DomainError> {
        self.require_admin(&meta.actor)?;
        if self.members.contains_key(&user.user_id) {
            return Err(DomainError::conflict(
                "already_member",
                "user is already a member",
            ));
        }
        let member = Member {
            user_id: user.user_id,
            username: user.username,
            display_name: user.display_name,
            role: Role::Member,
            joined_at: meta.occurred_at,
        };
        Ok(vec![Event::new(
            &meta,
            ProjectPayload::MemberAdded { member },
        )])
    }

    fn remove_member(
        &self,
        meta: EventMeta,
        user_id: Uuid,
    ) -> Result<Vec<ProjectEvent>, DomainError> {
        self.require_admin(&meta.actor)?;
        let Some(member) = self.members.get(&user_id) else {
            return Err(DomainError::NotFound { what: "member" });
        };
        let admins = self
            .members
            .values()
            .filter(|m| m.role == Role::Admin)
            .count();
        if member.role == Role::Admin && admins == 1 {
            return Err(DomainError::conflict(
                "last_admin",
                "cannot remove the last admin",
            ));
        }
        let username = member.username.clone();
        Ok(vec![Event::new(
            &meta,
            ProjectPayload::MemberRemoved { user_id, username },
        )])
    }

    /// Decides a command against the current state, without changing it.
    pub fn decide(&self, command: ProjectCommand) -> Result<Vec<ProjectEvent>, DomainError> {
        match command {
            ProjectCommand::Create {
                meta,
                project_id,
                key,
                name,
                display_name,
            } => self.create(meta, project_id, key, name, display_name),
            ProjectCommand::AddMember { meta, user } => self.add_member(meta, user),
            ProjectCommand::RemoveMember { meta, user_id } => self.remove_member(meta, user_id),
            ProjectCommand::PostAnnouncement {
                meta,
                announcement_id,
                title,
                message,
            } => self.post_announcement(meta, announcement_id, title, message),
        }
    }
}

impl Aggregate for Project {
    const TYPE: &'static str = "project";
    type Command = ProjectCommand;
    type Event = ProjectEvent;
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
        match event.payload {
            ProjectPayload::ProjectCreated {
                project_id,
                key,
                name,
                statuses,
            } => {
                self.id = project_id;
                self.key = key;
                self.name = name;
                self.statuses = statuses;
                self.created_at = event.meta.occurred_at;
            }
            ProjectPayload::MemberAdded { member } => {
                self.members.insert(member.user_id, member);
            }
            ProjectPayload::MemberRemoved { user_id, .. } => {
                self.members.remove(&user_id);
            }
            // Announcements change nothing the project's rules consult.
            ProjectPayload::AnnouncementPosted { .. } => {}
        }
    }
}

/// The part of a project that ticket rules consult.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProjectView {
    pub project_id: Uuid,
    pub key: String,
    pub statuses: Vec<Status>,
    pub members: Vec<Actor>,
}

impl ProjectView {
    pub fn member(&self, user_id: Uuid) -> Option<&Actor> {
        self.members.iter().find(|m| m.id == user_id)
    }

    pub fn status(&self, status_id: i64) -> Result<&Status, DomainError> {
        self.statuses
            .iter()
            .find(|s| s.id == status_id)
            .ok_or_else(|| DomainError::invalid("status_id", "no such status in this project"))
    }

    pub fn first_status(&self) -> Result<&Status, DomainError> {
        self.statuses
            .first()
            .ok_or_else(|| DomainError::invalid("status_id", "the project has no statuses"))
    }

    /// Members mentioned in `text`, never `actor` themself.
    pub fn mentions(&self, text: &str, actor: &Actor) -> Vec<Actor> {
        mention::mentioned_usernames(text)
            .into_iter()
            .filter_map(|name| self.members.iter().find(|m| m.username == name))
            .filter(|m| m.id != actor.id)
            .cloned()
            .collect()
    }
}
