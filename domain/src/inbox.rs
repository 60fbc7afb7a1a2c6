//! A user's inbox: the notices an operator sends one user with
//! `ticketflow notify`, as the seed's `send_notification` did.
//!
//! One stream per user, its id the user's id (stream type `inbox`), outside
//! every project. Why a stream per user rather than one system stream: the
//! stream is the unit of the version compare-and-set, so notices to different
//! users never contend, and a user's stream is their notice history. The log
//! keys every event by project (`events.project_id`, the NATS subject's
//! `<project_id>` token), so inbox events carry [`NO_PROJECT`], the nil UUID,
//! which no project ever has (project ids are UUID v7): the schema, the relay
//! and every existing guarantee stay as they are, and project feeds never
//! show them.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::{Actor, Event, EventMeta, Payload};
use crate::{validate, DomainError};

/// The project id inbox events are logged under: none (the nil UUID).
pub const NO_PROJECT: Uuid = Uuid::nil();

/// Who sends operator notices: the person at the server's command line, not
/// an account.
pub fn operator() -> Actor {
    Actor {
        id: Uuid::nil(),
        username: "operator".to_string(),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum InboxCommand {
    /// Tells `user` something (a `general` notification).
    SendNotice {
        meta: EventMeta,
        user: Actor,
        title: String,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
#[serde(tag = "type", content = "data")]
pub enum InboxPayload {
    NoticeSent {
        user: Actor,
        title: String,
        message: String,
    },
}

impl Payload for InboxPayload {
    fn event_type(&self) -> &'static str {
        match self {
            Self::NoticeSent { .. } => "NoticeSent",
        }
    }
}

pub type InboxEvent = Event<InboxPayload>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inbox {
    pub user_id: Uuid,
    /// Number of events applied; the stream's version.
    pub version: u64,
}

impl Inbox {
    /// Decides a command against the current state, without changing it.
    pub fn decide(&self, command: InboxCommand) -> Result<Vec<InboxEvent>, DomainError> {
        match command {
            InboxCommand::SendNotice {
                meta,
                user,
                title,
                message,
            } => {
                if self.version > 0 && self.user_id != user.id {
                    return Err(DomainError::invalid("user", "this inbox is another user's"));
                }
                validate::notice_text(&title, &message)?;
                Ok(vec![Event::new(
                    &meta,
                    InboxPayload::NoticeSent {
                        user,
                        title,
                        message,
                    },
                )])
            }
        }
    }
}

impl Aggregate for Inbox {
    const TYPE: &'static str = "inbox";
    type Command = InboxCommand;
    type Event = InboxEvent;
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
            InboxPayload::NoticeSent { user, .. } => self.user_id = user.id,
        }
    }
}
