//! Presence subjects: how gateway instances tell each other who is online.
//! The one place that turns a project into presence subjects and back.
//!
//! Subjects, under a deployment's prefix:
//! - `<prefix>.presence.<project>`: the operations of a project's users
//!   (join, leave, viewing, typing, beat), from every instance;
//! - `<prefix>.presence.sync.<project>`: requests, from an instance where a
//!   socket is opening, for the users of the project the others have.

use std::fmt::Display;

use uuid::Uuid;

use crate::Subjects;

const SYNC: &str = "sync.";

/// What a message on a presence subject is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceSubject {
    /// An operation of one of the project's users.
    Ops { project_id: Uuid },
    /// A request for the project's users on the instance that reads it.
    Sync { project_id: Uuid },
}

impl Subjects {
    /// Presence operations of one project's users.
    pub fn presence(&self, project_id: impl Display) -> String {
        format!("{}.presence.{project_id}", self.prefix())
    }

    /// Requests for the users of one project that each instance has.
    pub fn presence_sync(&self, project_id: impl Display) -> String {
        format!("{}.presence.{SYNC}{project_id}", self.prefix())
    }

    /// Every presence subject, for an instance's one subscription.
    pub fn all_presence(&self) -> String {
        format!("{}.presence.>", self.prefix())
    }

    /// What a presence subject is about; `None` for any other subject.
    pub fn parse_presence(&self, subject: &str) -> Option<PresenceSubject> {
        let rest = subject
            .strip_prefix(self.prefix())?
            .strip_prefix(".presence.")?;
        match rest.strip_prefix(SYNC) {
            Some(project) => Some(PresenceSubject::Sync {
                project_id: Uuid::parse_str(project).ok()?,
            }),
            None => Some(PresenceSubject::Ops {
                project_id: Uuid::parse_str(rest).ok()?,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_comes_back_from_its_presence_subjects() {
        let subjects = Subjects::new("tf");
        let project_id = Uuid::now_v7();
        assert_eq!(
            subjects.parse_presence(&subjects.presence(project_id)),
            Some(PresenceSubject::Ops { project_id })
        );
        assert_eq!(
            subjects.parse_presence(&subjects.presence_sync(project_id)),
            Some(PresenceSubject::Sync { project_id })
        );
    }

    #[test]
    fn other_subjects_are_not_presence() {
        let subjects = Subjects::new("tf");
        let project_id = Uuid::now_v7();
        let others = [
            Subjects::new("xx").presence(project_id),
            subjects.presence("not-a-uuid"),
            subjects.presence_sync("not-a-uuid"),
            subjects.member_removals(),
            format!("tf.channel.tickets.{project_id}"),
        ];
        for subject in others {
            assert_eq!(subjects.parse_presence(&subject), None, "{subject}");
        }
    }
}
