//! The read models on PostgreSQL: [`PgReadStore`] over a connection pool,
//! and [`PgReadTx`], one batch's transaction on a pooled connection.
//!
//! The schema is the store's migrations (`migrations/V2__read_models.sql`,
//! `V3__channel_messages.sql`). A transaction writes to the live tables, or
//! to a rebuild's copies ([`Tables`]); checkpoints are always the live ones.

mod queries;
mod write;

use async_trait::async_trait;
use deadpool_postgres::{ClientWrapper, Object, Pool};
use ticketflow_domain::Ticket;
use ticketflow_store::StoreError;
use tokio_postgres::Client;
use uuid::Uuid;

use crate::queries::{Comment, Notification};
use crate::read_store::{
    BatchTx, CommentRow, MessageRow, NotificationRow, ReadStore, ReadTx, RowWrites, StateTable,
    TicketRow,
};
use crate::Tables;

/// The read models in the PostgreSQL database `pool` connects to.
#[derive(Clone)]
pub struct PgReadStore {
    pool: Pool,
}

impl PgReadStore {
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    async fn client(&self) -> Result<Object, StoreError> {
        Ok(self.pool.get().await?)
    }
}

/// A transaction (`BEGIN` sent) on a connection of its own.
///
/// Dropped without commit or rollback, it takes its connection out of the
/// pool and closes it: the server rolls back, and the pool never hands out
/// a connection inside someone's transaction.
pub struct PgReadTx {
    /// `None` once committed or rolled back.
    client: Option<Object>,
    tables: Tables,
}

impl PgReadTx {
    /// Begins a transaction on `client`, writing to `tables`.
    pub async fn begin(client: Object, tables: Tables) -> Result<Self, StoreError> {
        if let Err(e) = client.batch_execute("BEGIN").await {
            // Whatever state it is in, it does not go back to the pool.
            drop(Object::take(client));
            return Err(e.into());
        }
        Ok(Self {
            client: Some(client),
            tables,
        })
    }

    /// The connection, for statements of the caller's own inside the
    /// transaction (a rebuild's `SET LOCAL` and table swap).
    pub fn client(&self) -> Result<&Client, StoreError> {
        Ok(self.conn()?)
    }

    /// The connection with its statement cache.
    fn conn(&self) -> Result<&ClientWrapper, StoreError> {
        match &self.client {
            Some(client) => Ok(client),
            None => Err(StoreError::Unavailable("transaction already ended".into())),
        }
    }

    /// Commits and hands the connection back (a rebuild keeps one
    /// connection, and its session lock, throughout).
    pub async fn commit_keep(mut self) -> Result<Object, StoreError> {
        let client = self.end("COMMIT").await?;
        Ok(client)
    }

    async fn end(&mut self, statement: &str) -> Result<Object, StoreError> {
        let client = self
            .client
            .take()
            .ok_or_else(|| StoreError::Unavailable("transaction already ended".into()))?;
        // On failure the connection is dropped here, unpooled (see Drop).
        match client.batch_execute(statement).await {
            Ok(()) => Ok(client),
            Err(e) => {
                drop(Object::take(client));
                Err(e.into())
            }
        }
    }

    fn state_table(&self, table: StateTable) -> String {
        self.tables.name(table.table())
    }
}

impl Drop for PgReadTx {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }
}

#[async_trait]
impl ReadTx for PgReadTx {
    async fn load_states(
        &mut self,
        table: StateTable,
        ids: &[Uuid],
    ) -> Result<Vec<(Uuid, Ticket)>, StoreError> {
        write::load_states(self.conn()?, &self.state_table(table), ids).await
    }

    async fn save_states(
        &mut self,
        table: StateTable,
        states: &[&Ticket],
    ) -> Result<(), StoreError> {
        if table == StateTable::Tickets {
            return Err(StoreError::Corrupt(
                "rm_tickets rows are written whole, by upsert_tickets".into(),
            ));
        }
        write::save_states(self.conn()?, &self.state_table(table), states).await
    }

    async fn drop_states(&mut self, table: StateTable, ids: &[Uuid]) -> Result<(), StoreError> {
        write::drop_states(self.conn()?, &self.state_table(table), ids).await
    }

    async fn upsert_tickets(&mut self, rows: &[TicketRow<'_>]) -> Result<(), StoreError> {
        write::upsert_tickets(self.conn()?, &self.tables, rows).await
    }

    fn rows(&mut self) -> &mut dyn RowWrites {
        self
    }
}

/// A rebuild's copies take their new rows by `COPY` ([`write`]'s
/// `CopyIn`): nobody else writes them and the log's events come to them
/// once each, so none of those rows is ever there already.
#[async_trait]
impl RowWrites for PgReadTx {
    async fn insert_comments(&mut self, rows: &[CommentRow<'_>]) -> Result<(), StoreError> {
        if self.tables.is_live() {
            write::insert_comments(self.conn()?, &self.tables, rows).await
        } else {
            write::copy_comments(self.conn()?, &self.tables, rows).await
        }
    }

    async fn advance_heads(
        &mut self,
        added: &[(Uuid, i64)],
    ) -> Result<Vec<(Uuid, i64)>, StoreError> {
        write::advance_heads(self.conn()?, &self.tables, added).await
    }

    async fn insert_notifications(
        &mut self,
        rows: &[NotificationRow<'_>],
    ) -> Result<(), StoreError> {
        if self.tables.is_live() {
            write::insert_notifications(self.conn()?, &self.tables, rows).await
        } else {
            write::copy_notifications(self.conn()?, &self.tables, rows).await
        }
    }

    async fn insert_ticket_messages(&mut self, rows: &[MessageRow]) -> Result<(), StoreError> {
        if self.tables.is_live() {
            write::insert_ticket_messages(self.conn()?, &self.tables, rows).await
        } else {
            write::copy_ticket_messages(self.conn()?, &self.tables, rows).await
        }
    }
}

#[async_trait]
impl BatchTx for PgReadTx {
    async fn lock_checkpoints(&mut self, names: &[&str]) -> Result<Vec<i64>, StoreError> {
        write::lock_checkpoints(self.conn()?, names).await
    }

    async fn set_checkpoints(&mut self, moves: &[(&str, i64)]) -> Result<(), StoreError> {
        write::set_checkpoints(self.conn()?, moves).await
    }

    async fn commit(mut self: Box<Self>) -> Result<(), StoreError> {
        self.end("COMMIT").await.map(drop)
    }

    async fn rollback(mut self: Box<Self>) -> Result<(), StoreError> {
        self.end("ROLLBACK").await.map(drop)
    }
}

#[async_trait]
impl ReadStore for PgReadStore {
    async fn begin(&self) -> Result<Box<dyn BatchTx>, StoreError> {
        let tx = PgReadTx::begin(self.client().await?, Tables::live()).await?;
        Ok(Box::new(tx))
    }

    async fn ticket(&self, id: Uuid) -> Result<Option<Ticket>, StoreError> {
        queries::ticket(&*self.client().await?, id).await
    }

    async fn tickets(
        &self,
        project_id: Uuid,
        status_id: Option<i64>,
        assignee_id: Option<Uuid>,
        after_number: i64,
        limit: i64,
    ) -> Result<Vec<Ticket>, StoreError> {
        let client = self.client().await?;
        queries::tickets(
            &client,
            project_id,
            status_id,
            assignee_id,
            after_number,
            limit,
        )
        .await
    }

    async fn comments(
        &self,
        ticket_id: Uuid,
        after_version: i64,
        limit: i64,
    ) -> Result<Vec<Comment>, StoreError> {
        queries::comments(&*self.client().await?, ticket_id, after_version, limit).await
    }

    async fn notifications(
        &self,
        user_id: Uuid,
        unread_only: bool,
        after_seq: Option<i64>,
        limit: i64,
    ) -> Result<(i64, Vec<Notification>), StoreError> {
        let client = self.client().await?;
        queries::notifications(&client, user_id, unread_only, after_seq, limit).await
    }

    async fn notifications_since(
        &self,
        user_id: Uuid,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<Notification>, StoreError> {
        queries::notifications_since(&*self.client().await?, user_id, after_seq, limit).await
    }

    async fn ticket_messages(
        &self,
        project_id: Uuid,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        queries::ticket_messages(&*self.client().await?, project_id, after_seq, limit).await
    }

    async fn ticket_channel_head(&self, project_id: Uuid) -> Result<i64, StoreError> {
        queries::ticket_channel_head(&*self.client().await?, project_id).await
    }

    async fn notification_head(&self, user_id: Uuid) -> Result<i64, StoreError> {
        queries::notification_head(&*self.client().await?, user_id).await
    }

    async fn ticket_channel_heads(&self, project_ids: Vec<Uuid>) -> Result<Vec<i64>, StoreError> {
        queries::ticket_channel_heads(&*self.client().await?, &project_ids).await
    }

    async fn notification_heads(&self, user_ids: Vec<Uuid>) -> Result<Vec<i64>, StoreError> {
        queries::notification_heads(&*self.client().await?, &user_ids).await
    }

    async fn unread_count(&self, user_id: Uuid) -> Result<i64, StoreError> {
        queries::unread_count(&*self.client().await?, user_id).await
    }

    async fn mark_read(&self, user_id: Uuid, notification_id: Uuid) -> Result<bool, StoreError> {
        queries::mark_read(&*self.client().await?, user_id, notification_id).await
    }

    async fn mark_all_read(&self, user_id: Uuid) -> Result<i64, StoreError> {
        queries::mark_all_read(&*self.client().await?, user_id).await
    }

    async fn checkpoint(&self, name: &str) -> Result<i64, StoreError> {
        queries::checkpoint(&*self.client().await?, name).await
    }

    async fn checkpoints(&self) -> Result<Vec<(String, i64)>, StoreError> {
        queries::checkpoints(&*self.client().await?).await
    }
}
