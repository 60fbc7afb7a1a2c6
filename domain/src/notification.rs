//! Who is notified of a ticket event, and with what words.
//!
//! The rules, from the contract: the new assignee is told they were assigned,
//! the old one that they were unassigned; mentioned members are told they were
//! mentioned; a ticket's assignee and reporter hear of comments and status
//! changes. Nobody hears of their own action, and one event gives one user at
//! most one notice: the first applicable type in [`NotificationType`]'s order.
//!
//! Pure: [`notices`] looks only at the ticket as it was before the event and at
//! the event, so replaying the log always yields the same notices.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::Actor;
use crate::inbox::{InboxEvent, InboxPayload};
use crate::project::{ProjectEvent, ProjectPayload};
use crate::ticket::{Ticket, TicketEvent, TicketPayload};

/// The kinds of notification, in priority order: when several apply to one
/// user for one event, the earliest wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum NotificationType {
    Mentioned,
    TicketAssigned,
    TicketUnassigned,
    StatusChanged,
    CommentAdded,
    /// Custom text: a project announcement or an operator's notice.
    General,
}

impl NotificationType {
    pub const ALL: [Self; 6] = [
        Self::Mentioned,
        Self::TicketAssigned,
        Self::TicketUnassigned,
        Self::StatusChanged,
        Self::CommentAdded,
        Self::General,
    ];

    /// The wire name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mentioned => "mentioned",
            Self::TicketAssigned => "ticket_assigned",
            Self::TicketUnassigned => "ticket_unassigned",
            Self::StatusChanged => "status_changed",
            Self::CommentAdded => "comment_added",
            Self::General => "general",
        }
    }

    /// The notification's title as shown to users.
    pub fn title(self) -> &'static str {
        match self {
            Self::Mentioned => "Mentioned",
            Self::TicketAssigned => "Ticket Assigned",
            Self::TicketUnassigned => "Ticket Unassigned",
            Self::StatusChanged => "Status Changed",
            Self::CommentAdded => "Comment Added",
            // General notices carry their author's title; this is a fallback.
            Self::General => "General",
        }
    }
}

impl fmt::Display for NotificationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A wire name that names no notification type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown notification type {0:?}")]
pub struct UnknownNotificationType(pub String);

impl FromStr for NotificationType {
    type Err = UnknownNotificationType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownNotificationType(s.to_string()))
    }
}

/// One notification to deliver: to whom, of what kind, and its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub user_id: Uuid,
    pub notification_type: NotificationType,
    pub title: String,
    pub message: String,
}

/// The notices `event` gives, at most one per user, never to its actor.
///
/// `before` is the ticket as it was before the event: its key, title, assignee
/// and reporter are the ones the users knew. A `TicketCreated` carries its own.
/// Mentions come from the event, already limited to members, without the
/// actor, and for descriptions only the newly added ones.
pub fn notices(before: &Ticket, event: &TicketEvent) -> Vec<Notice> {
    let subject = Subject::of(before, &event.payload);
    let mut candidates = candidates(before, &event.payload);
    // Stable: within one type, users keep the order the rules named them in.
    candidates.sort_by_key(|(kind, _)| *kind);
    let mut out: Vec<Notice> = Vec::new();
    for (kind, user) in candidates {
        if user.id == event.meta.actor.id || out.iter().any(|n| n.user_id == user.id) {
            continue;
        }
        out.push(Notice {
            user_id: user.id,
            notification_type: kind,
            title: kind.title().to_string(),
            message: subject.message(kind, &event.meta.actor),
        });
    }
    out
}

/// The `general` notices a project event gives: an announcement's, to the
/// recipients it names (every member but its author when posted). Other
/// project events notify nobody.
pub fn announcement_notices(event: &ProjectEvent) -> Vec<Notice> {
    match &event.payload {
        ProjectPayload::AnnouncementPosted {
            title,
            message,
            recipients,
            ..
        } => recipients
            .iter()
            .filter(|u| u.id != event.meta.actor.id)
            .map(|u| general(u.id, title, message))
            .collect(),
        ProjectPayload::ProjectCreated { .. }
        | ProjectPayload::MemberAdded { .. }
        | ProjectPayload::MemberRemoved { .. } => Vec::new(),
    }
}

/// The one `general` notice an operator's notice gives its user.
pub fn inbox_notices(event: &InboxEvent) -> Vec<Notice> {
    match &event.payload {
        InboxPayload::NoticeSent {
            user,
            title,
            message,
        } => vec![general(user.id, title, message)],
    }
}

fn general(user_id: Uuid, title: &str, message: &str) -> Notice {
    Notice {
        user_id,
        notification_type: NotificationType::General,
        title: title.to_string(),
        message: message.to_string(),
    }
}

/// Every (type, user) pair the rules name for this event, before priority,
/// deduplication and actor exclusion.
fn candidates<'a>(
    before: &'a Ticket,
    payload: &'a TicketPayload,
) -> Vec<(NotificationType, &'a Actor)> {
    use NotificationType as N;
    let watchers = || before.assignee.iter().chain(before.reporter.iter());
    match payload {
        TicketPayload::TicketCreated {
            assignee, mentions, ..
        } => tagged(N::Mentioned, mentions)
            .chain(assignee.iter().map(|a| (N::TicketAssigned, a)))
            .collect(),
        TicketPayload::TicketDescriptionChanged { added_mentions, .. } => {
            tagged(N::Mentioned, added_mentions).collect()
        }
        TicketPayload::TicketAssigned { assignee, previous } => {
            let dropped = previous.iter().filter(|p| p.id != assignee.id);
            std::iter::once((N::TicketAssigned, assignee))
                .chain(dropped.map(|p| (N::TicketUnassigned, p)))
                .collect()
        }
        TicketPayload::TicketUnassigned { previous } => vec![(N::TicketUnassigned, previous)],
        TicketPayload::TicketStatusChanged { .. } => {
            watchers().map(|u| (N::StatusChanged, u)).collect()
        }
        TicketPayload::CommentAdded { mentions, .. } => tagged(N::Mentioned, mentions)
            .chain(watchers().map(|u| (N::CommentAdded, u)))
            .collect(),
        TicketPayload::TicketTitleChanged { .. }
        | TicketPayload::TicketPriorityChanged { .. }
        | TicketPayload::TicketLabelsChanged { .. }
        | TicketPayload::TicketDeleted {} => Vec::new(),
    }
}

fn tagged(
    kind: NotificationType,
    users: &[Actor],
) -> impl Iterator<Item = (NotificationType, &Actor)> {
    users.iter().map(move |u| (kind, u))
}

/// What a notice's message names: the ticket as its users knew it, and for a
/// status change the new status.
struct Subject<'a> {
    key: &'a str,
    title: &'a str,
    status: Option<&'a str>,
}

impl<'a> Subject<'a> {
    fn of(before: &'a Ticket, payload: &'a TicketPayload) -> Self {
        let (key, title) = match payload {
            TicketPayload::TicketCreated { key, title, .. } => (key.as_str(), title.as_str()),
            _ => (before.key.as_str(), before.title.as_str()),
        };
        let status = match payload {
            TicketPayload::TicketStatusChanged { status, .. } => Some(status.name.as_str()),
            _ => None,
        };
        Self { key, title, status }
    }

    fn message(&self, kind: NotificationType, actor: &Actor) -> String {
        let ticket = format!("{}: {}", self.key, self.title);
        let who = &actor.username;
        match kind {
            NotificationType::Mentioned => format!("{who} mentioned you in {ticket}"),
            NotificationType::TicketAssigned => format!("You were assigned to {ticket}"),
            NotificationType::TicketUnassigned => format!("You were unassigned from {ticket}"),
            NotificationType::StatusChanged => {
                format!("{ticket} moved to {}", self.status.unwrap_or_default())
            }
            NotificationType::CommentAdded => format!("{who} commented on {ticket}"),
            // Never a candidate of a ticket event.
            NotificationType::General => String::new(),
        }
    }
}
