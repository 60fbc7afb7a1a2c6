//! The shapes the read API gets back from a [`crate::ReadStore`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ticketflow_domain::{Actor, NotificationType};
use uuid::Uuid;

/// A comment as listed. `version` is the ticket version the comment took:
/// the paging cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub id: Uuid,
    pub ticket_id: Uuid,
    pub author: Actor,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub version: i64,
}

/// A notification in the contract's JSON shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub id: Uuid,
    pub seq: i64,
    pub notification_type: NotificationType,
    pub title: String,
    pub message: String,
    pub ticket_id: Uuid,
    pub ticket_key: String,
    pub project_id: Uuid,
    pub read: bool,
    pub timestamp: DateTime<Utc>,
}
