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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Notification {
    pub id: Uuid,
    pub seq: i64,
    pub notification_type: NotificationType,
    pub title: String,
    pub message: String,
    /// Null for a `general` notification (announcements, operator notices).
    #[cfg_attr(feature = "openapi", schema(required))]
    pub ticket_id: Option<Uuid>,
    #[cfg_attr(feature = "openapi", schema(required))]
    pub ticket_key: Option<String>,
    /// Null for an operator's notice.
    #[cfg_attr(feature = "openapi", schema(required))]
    pub project_id: Option<Uuid>,
    pub read: bool,
    pub timestamp: DateTime<Utc>,
}

/// The columns of a notification, its read flag last; `n` is the
/// notification, `m` the user's read-all mark, `r` their single reads. Both
/// backends' SQL says it alike, so the read rule is written once, here.
pub(crate) const NOTIFICATION_COLUMNS: &str = "n.notification_id, n.seq, n.notification_type, \
     n.title, n.message, n.ticket_id, n.ticket_key, n.project_id, n.occurred_at, \
     (n.seq <= coalesce(m.up_to_seq, 0) OR r.notification_id IS NOT NULL)";

/// Notifications with their user's read-all mark and their own read flag.
pub(crate) const NOTIFICATION_JOINS: &str = "rm_notifications n
     LEFT JOIN notification_read_marks m ON m.user_id = n.user_id
     LEFT JOIN notification_reads r
       ON r.user_id = n.user_id AND r.notification_id = n.notification_id";

/// A notification is unread when neither its own flag nor the mark covers it.
pub(crate) const UNREAD: &str = "n.seq > coalesce(m.up_to_seq, 0) AND r.notification_id IS NULL";
