//! Operator notices (`ticketflow notify`): a `general` notification for one
//! user, as the seed's `send_notification` sent. Each is an event in the
//! user's inbox stream (see [`ticketflow_domain::inbox`] for why that
//! stream), so it is in the log's history, replayed and rebuilt like every
//! notification.

use ticketflow_domain::inbox::{operator, InboxCommand, NO_PROJECT};
use ticketflow_domain::{Actor, DomainError, EventMeta};
use ticketflow_store::{Accounts, Append, EventStore, Metadata, StoreError, StoredEvent};

/// Why a notice was not sent.
#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    #[error("no user has the username {0:?}")]
    UnknownUser(String),
    #[error("{0}")]
    Refused(#[from] DomainError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Bound on decide-again rounds against concurrent notices to one user.
const MAX_ATTEMPTS: usize = 50;

/// Appends a notice to `username`'s inbox; returns the stored event.
pub async fn send_notice(
    events: &dyn EventStore,
    accounts: &dyn Accounts,
    username: &str,
    title: &str,
    message: &str,
) -> Result<StoredEvent, NoticeError> {
    let account = accounts
        .user_by_username(username)
        .await?
        .ok_or_else(|| NoticeError::UnknownUser(username.to_string()))?
        .user;
    let user = Actor {
        id: account.user_id,
        username: account.username,
    };
    for _ in 0..MAX_ATTEMPTS {
        let inbox = events.load_inbox(user.id).await?;
        let command = InboxCommand::SendNotice {
            meta: EventMeta {
                actor: operator(),
                occurred_at: crate::now(),
            },
            user: user.clone(),
            title: title.to_string(),
            message: message.to_string(),
        };
        let decided: Vec<_> = inbox.state.decide(command)?;
        let append = Append {
            stream_id: user.id,
            project_id: NO_PROJECT,
            before: inbox,
            events: decided,
            metadata: Metadata::default(),
        };
        match events.append_inbox(append).await {
            Ok(committed) => {
                return committed.events.into_iter().next_back().ok_or_else(|| {
                    NoticeError::Store(StoreError::Corrupt("a notice stored no event".into()))
                })
            }
            Err(StoreError::VersionConflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DomainError::conflict("contended", "too many concurrent notices to this user").into())
}
