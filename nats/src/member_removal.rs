//! Member removals, read off the event stream: a removed member's sockets
//! on the project close (4403) on every gateway instance.
//!
//! The subject is the event's own (`<prefix>.events.<project>.<stream>.MemberRemoved`),
//! so a gateway needs no announcement of its own: it subscribes to every
//! project's removals and reads the project and the user from the event.

use serde::Deserialize;
use uuid::Uuid;

use crate::pubsub::Message;
use crate::{decode, Subjects};

/// The event type whose messages [`member_removal`] reads.
const MEMBER_REMOVED: &str = "MemberRemoved";

/// Who was removed from which project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberRemoval {
    pub project_id: Uuid,
    pub user_id: Uuid,
}

impl Subjects {
    /// Every project's member removals.
    pub fn member_removals(&self) -> String {
        format!("{}.events.*.*.{MEMBER_REMOVED}", self.prefix())
    }
}

/// The removal a `MemberRemoved` event's message carries; `None` for any
/// other message.
pub fn member_removal(message: &Message) -> Option<MemberRemoval> {
    #[derive(Deserialize)]
    struct Removed {
        user_id: Uuid,
    }
    let event = decode(&message.payload).ok()?;
    if event.event_type != MEMBER_REMOVED {
        return None;
    }
    let removed: Removed = event.data.parse().ok()?;
    Some(MemberRemoval {
        project_id: event.project_id,
        user_id: removed.user_id,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event_message(event_type: &str, project_id: Uuid, user_id: Uuid) -> Message {
        let event = json!({
            "position": 7, "event_id": Uuid::now_v7(), "stream_id": project_id,
            "stream_type": "project", "project_id": project_id, "version": 3, "seq": null,
            "event_type": event_type, "schema_version": 1,
            "data": { "user_id": user_id, "username": "bob" },
            "actor": { "id": Uuid::now_v7(), "username": "alice" },
            "occurred_at": "2024-05-01T12:00:00Z", "metadata": {},
        });
        let subject = format!("tf.events.{project_id}.{project_id}.{event_type}");
        Message::new(subject, event.to_string())
    }

    #[test]
    fn a_member_removed_event_names_the_project_and_the_user() {
        let (project_id, user_id) = (Uuid::now_v7(), Uuid::now_v7());
        let message = event_message("MemberRemoved", project_id, user_id);
        assert_eq!(
            member_removal(&message),
            Some(MemberRemoval {
                project_id,
                user_id
            })
        );
    }

    #[test]
    fn other_events_and_other_bodies_are_no_removal() {
        let (project_id, user_id) = (Uuid::now_v7(), Uuid::now_v7());
        let added = event_message("MemberAdded", project_id, user_id);
        assert_eq!(member_removal(&added), None);
        let garbage = Message::new("tf.events.x.y.MemberRemoved".into(), "{}");
        assert_eq!(member_removal(&garbage), None);
    }

    #[test]
    fn the_removals_subject_matches_the_events_subjects() {
        assert_eq!(
            Subjects::new("tf").member_removals(),
            "tf.events.*.*.MemberRemoved"
        );
    }
}
