//! Read marks: stored in the read models, then announced to every
//! notification socket of the reader (on any instance), so each tab's badge
//! stays right.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::{ApiError, AppState, AuthUser};

impl AppState {
    /// Marks one of the caller's notifications read (404 if it has none by
    /// that id).
    pub async fn mark_read(&self, user: &AuthUser, id: Uuid) -> Result<(), ApiError> {
        if !self.reads.mark_read(user.id, id).await? {
            return Err(ApiError::not_found("notification"));
        }
        self.announce_read(user, json!([id])).await;
        Ok(())
    }

    /// Marks every notification of the caller read.
    pub async fn mark_all_read(&self, user: &AuthUser) -> Result<(), ApiError> {
        self.reads.mark_all_read(user.id).await?;
        self.announce_read(user, json!("all")).await;
        Ok(())
    }

    /// Best effort: the REST answer already stands.
    async fn announce_read(&self, user: &AuthUser, ids: Value) {
        let Some(broker) = &self.broker else { return };
        let unread = match self.reads.unread_count(user.id).await {
            Ok(unread) => unread,
            Err(e) => return tracing::warn!(error = %e, "cannot count unread notifications"),
        };
        let message = json!({ "type": "notifications_read", "ids": ids, "unread_count": unread });
        if let Err(e) = broker
            .publish_read_signal(user.id, message.to_string())
            .await
        {
            tracing::warn!(error = %e, "cannot announce notifications_read");
        }
    }
}
