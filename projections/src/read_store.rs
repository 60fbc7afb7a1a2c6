//! The read side's storage, behind two traits, so the same projections and
//! queries run on PostgreSQL ([`crate::pg`]) and on SQLite ([`crate::sqlite`]).
//!
//! - [`ReadTx`]: the row-level writes the projections make in a batch's
//!   transaction, [`BatchTx`], which also moves their checkpoints. What to write
//!   is decided by the projections (shared code); a backend only persists.
//! - [`ReadStore`]: opens those transactions, and answers what the read API,
//!   the realtime gateway and the projection workers ask of the read models.
//!
//! The row types below are plain data both backends take; they borrow from
//! the batch where they can, so the PostgreSQL backend writes them without
//! copying (SQLite converts them to owned values for its blocking thread).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ticketflow_domain::{Actor, NotificationType, Ticket};
use ticketflow_store::StoreError;
use uuid::Uuid;

use crate::messages::notification_message;
use crate::queries::{Comment, Notification};

/// A table of ticket states a projection keeps beside its rows (one per
/// projection: projections advance independently, so none reads another's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StateTable {
    /// `rm_tickets`: the tickets read model itself. Read only through
    /// [`ReadTx::load_states`]; its rows are written by [`ReadTx::upsert_tickets`].
    Tickets,
    /// `rm_notify_tickets`, the notifications projection's.
    Notify,
    /// `rm_channel_tickets`, the ticket channel projection's.
    Channel,
}

impl StateTable {
    /// The live table's name.
    pub fn table(self) -> &'static str {
        match self {
            Self::Tickets => "rm_tickets",
            Self::Notify => "rm_notify_tickets",
            Self::Channel => "rm_channel_tickets",
        }
    }
}

/// An `rm_tickets` row: the columns beside the state are derived from it.
#[derive(Debug, Clone, Copy)]
pub struct TicketRow<'a> {
    pub state: &'a Ticket,
    /// Position of the last event applied to the ticket.
    pub position: i64,
}

/// An `rm_comments` row.
#[derive(Debug, Clone)]
pub struct CommentRow<'a> {
    pub comment_id: Uuid,
    pub ticket_id: Uuid,
    pub project_id: Uuid,
    /// The ticket version the comment took: the paging cursor.
    pub version: i64,
    pub author: &'a Actor,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// An `rm_notifications` row.
#[derive(Debug, Clone)]
pub struct NotificationRow<'a> {
    pub notification_id: Uuid,
    pub user_id: Uuid,
    pub seq: i64,
    pub notification_type: NotificationType,
    pub title: &'a str,
    pub message: &'a str,
    /// `None` for a `general` notification (about no ticket).
    pub ticket_id: Option<Uuid>,
    pub ticket_key: Option<&'a str>,
    /// `None` for an operator's notice (about no project).
    pub project_id: Option<Uuid>,
    pub occurred_at: DateTime<Utc>,
    pub event_id: Uuid,
    /// Global position of the event that gave it.
    pub position: i64,
}

/// An `rm_ticket_messages` row: a ticket-channel message, rendered.
#[derive(Debug, Clone)]
pub struct MessageRow {
    pub project_id: Uuid,
    pub seq: i64,
    pub position: i64,
    pub message: String,
}

/// The row writes of a batch's transaction: what [`crate::Projection::apply`]
/// writes through. The ticket states are methods of their own (a live worker
/// or a rebuild may keep them in memory instead, by wrapping the
/// transaction); every other write goes through [`ReadTx::rows`].
#[async_trait]
pub trait ReadTx: Send {
    /// The states of the tickets `ids` that `table` holds, with their ids;
    /// tickets without a row are left out.
    async fn load_states(
        &mut self,
        table: StateTable,
        ids: &[Uuid],
    ) -> Result<Vec<(Uuid, Ticket)>, StoreError>;

    /// Inserts or replaces the states (keyed by their ids) in `table`
    /// ([`StateTable::Notify`] or [`StateTable::Channel`]).
    async fn save_states(
        &mut self,
        table: StateTable,
        states: &[&Ticket],
    ) -> Result<(), StoreError>;

    /// Deletes the states of the tickets `ids` from `table`.
    async fn drop_states(&mut self, table: StateTable, ids: &[Uuid]) -> Result<(), StoreError>;

    /// Inserts or replaces `rm_tickets` rows.
    async fn upsert_tickets(&mut self, rows: &[TicketRow<'_>]) -> Result<(), StoreError>;

    /// The transaction's other writes.
    fn rows(&mut self) -> &mut dyn RowWrites;
}

/// The writes of a batch's transaction other than ticket states.
#[async_trait]
pub trait RowWrites: Send {
    /// Inserts comments; one already stored (same id) is left as it is.
    async fn insert_comments(&mut self, rows: &[CommentRow<'_>]) -> Result<(), StoreError>;

    /// Moves each user's notification head on by the count given, users in
    /// ascending id order; returns each user's new head (last seq). The
    /// heads stay locked until the transaction ends, so seqs stay contiguous.
    async fn advance_heads(
        &mut self,
        added: &[(Uuid, i64)],
    ) -> Result<Vec<(Uuid, i64)>, StoreError>;

    /// Inserts notifications (under seqs [`RowWrites::advance_heads`] handed out).
    async fn insert_notifications(
        &mut self,
        rows: &[NotificationRow<'_>],
    ) -> Result<(), StoreError>;

    /// Inserts ticket-channel messages; one already stored (same project and
    /// seq) is left as it is.
    async fn insert_ticket_messages(&mut self, rows: &[MessageRow]) -> Result<(), StoreError>;
}

/// A batch's transaction: what [`crate::apply_batch`] locks and moves the
/// checkpoints in, around the projections' writes. Dropped without
/// [`BatchTx::commit`], nothing it wrote stays.
#[async_trait]
pub trait BatchTx: ReadTx {
    /// Locks the checkpoints of the projections `names` until the
    /// transaction ends (creating them at 0 if missing) and returns their
    /// positions, in the order of `names`: workers of one projection, and a
    /// rebuild's swap, take turns on them. Whatever the order asked for,
    /// they are locked in name order, so that two transactions locking
    /// several never deadlock.
    async fn lock_checkpoints(&mut self, names: &[&str]) -> Result<Vec<i64>, StoreError>;

    /// Moves each (locked) checkpoint `(name, position)`.
    async fn set_checkpoints(&mut self, moves: &[(&str, i64)]) -> Result<(), StoreError>;

    async fn commit(self: Box<Self>) -> Result<(), StoreError>;

    /// Ends the transaction without keeping anything; cheaper than dropping
    /// it (a pooled connection can be reused).
    async fn rollback(self: Box<Self>) -> Result<(), StoreError>;
}

/// The read models' storage: batch transactions, and every read the API,
/// the gateway and the workers make. Each answer comes from one snapshot.
#[async_trait]
pub trait ReadStore: Send + Sync + 'static {
    /// A transaction of its own (on a connection of its own) for one batch.
    async fn begin(&self) -> Result<Box<dyn BatchTx>, StoreError>;

    /// A live (not deleted) ticket.
    async fn ticket(&self, id: Uuid) -> Result<Option<Ticket>, StoreError>;

    /// A project's live tickets with number > `after_number`, by number,
    /// optionally only those in a status or with an assignee.
    async fn tickets(
        &self,
        project_id: Uuid,
        status_id: Option<i64>,
        assignee_id: Option<Uuid>,
        after_number: i64,
        limit: i64,
    ) -> Result<Vec<Ticket>, StoreError>;

    /// A ticket's comments with version > `after_version`, oldest first.
    async fn comments(
        &self,
        ticket_id: Uuid,
        after_version: i64,
        limit: i64,
    ) -> Result<Vec<Comment>, StoreError>;

    /// The user's unread count and a page of their notifications, newest
    /// first, both from one snapshot. `after_seq` is the cursor: the seq of
    /// the previous page's last item, so the page holds older ones (seq <
    /// it). `unread_only` leaves out read ones.
    async fn notifications(
        &self,
        user_id: Uuid,
        unread_only: bool,
        after_seq: Option<i64>,
        limit: i64,
    ) -> Result<(i64, Vec<Notification>), StoreError>;

    /// The user's notifications with seq > `after_seq`, oldest first, as
    /// their channel messages show them: unread whatever the flags say.
    async fn notifications_since(
        &self,
        user_id: Uuid,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<Notification>, StoreError>;

    /// The project's ticket-channel messages with seq > `after_seq`, oldest
    /// first, as `(seq, JSON text)`: the stored text, the same bytes the live
    /// message carried.
    async fn ticket_messages(
        &self,
        project_id: Uuid,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, StoreError>;

    /// The seq of the project's newest stored ticket-channel message (the
    /// channel's head as replay can serve it), 0 when it has none.
    async fn ticket_channel_head(&self, project_id: Uuid) -> Result<i64, StoreError>;

    /// The seq of the user's newest notification (their channel's head), 0
    /// when they have none.
    async fn notification_head(&self, user_id: Uuid) -> Result<i64, StoreError>;

    /// [`ReadStore::ticket_channel_head`] of each project, in one statement
    /// (the gateway's head check asks for all its channels at once).
    async fn ticket_channel_heads(&self, project_ids: Vec<Uuid>) -> Result<Vec<i64>, StoreError>;

    /// [`ReadStore::notification_head`] of each user, in one statement.
    async fn notification_heads(&self, user_ids: Vec<Uuid>) -> Result<Vec<i64>, StoreError>;

    /// How many of the user's notifications are unread.
    async fn unread_count(&self, user_id: Uuid) -> Result<i64, StoreError>;

    /// Marks one of the user's notifications read. `false` when the user has
    /// no such notification (someone else's included); marking again is fine.
    async fn mark_read(&self, user_id: Uuid, notification_id: Uuid) -> Result<bool, StoreError>;

    /// Marks every notification the user has so far read; returns the seq
    /// read up to. Notifications projected later arrive unread.
    async fn mark_all_read(&self, user_id: Uuid) -> Result<i64, StoreError>;

    /// The checkpoint of the projection `name`; 0 before its first batch.
    async fn checkpoint(&self, name: &str) -> Result<i64, StoreError>;

    /// Every projection's checkpoint, by name.
    async fn checkpoints(&self) -> Result<Vec<(String, i64)>, StoreError>;

    /// The user's notification-channel messages with seq > `after_seq`,
    /// oldest first, as `(seq, JSON text)`: what a reconnecting socket
    /// replays. The same bytes as the live messages, read flags
    /// notwithstanding: both are rendered here, from the same rows.
    async fn notification_messages(
        &self,
        user_id: Uuid,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        self.notifications_since(user_id, after_seq, limit)
            .await?
            .iter()
            .map(|n| Ok((n.seq, notification_message(n)?)))
            .collect()
    }
}
