//! The messages between gateway instances about a project's users, on
//! `<prefix>.presence.<project>` (and as replies to a sync request).
//!
//! Instances of different versions share a project during a rolling
//! deployment: fields are only ever added, with a default.

use serde::{Deserialize, Serialize};
use ticketflow_app::AuthUser;
use uuid::Uuid;

/// One message between instances.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Wire {
    /// Who says it: an instance ignores its own messages.
    pub instance: Uuid,
    pub op: Op,
    /// The user concerned (join, leave, viewing, typing), or every local
    /// user of the project (beat, sync reply).
    #[serde(default)]
    pub users: Vec<WireUser>,
    /// The ticket being typed in (typing).
    #[serde(default)]
    pub ticket_id: Option<Uuid>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Op {
    Join,
    Leave,
    Viewing,
    Typing,
    /// The instance's whole list of the project's users: whoever it no
    /// longer names has left it.
    Beat,
}

/// A user as the instances tell each other of them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct WireUser {
    pub user_id: Uuid,
    pub username: String,
    #[serde(default)]
    pub viewing: Option<Uuid>,
}

impl WireUser {
    pub fn of(user: &AuthUser, viewing: Option<Uuid>) -> Self {
        Self {
            user_id: user.id,
            username: user.username.clone(),
            viewing,
        }
    }
}

impl Wire {
    pub fn encode(&self) -> Option<Vec<u8>> {
        serde_json::to_vec(self).ok()
    }

    pub fn decode(payload: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(payload)
    }
}
