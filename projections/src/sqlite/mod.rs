//! The read models in one SQLite file (`<data-dir>/reads.db`), for the
//! embedded mode: [`SqliteReadStore`] and its batch transaction
//! [`SqliteReadTx`].
//!
//! rusqlite is synchronous, so every statement runs on tokio's blocking
//! threads, never on the async ones. One connection writes, behind an async
//! mutex: a batch's transaction (`BEGIN IMMEDIATE`) holds it from begin to
//! commit, which also serialises the projection workers the way PostgreSQL's
//! checkpoint row lock does. Reads go through connections of their own
//! (WAL: they read the last commit while a batch writes), kept for reuse.

mod queries;
mod schema;
mod write;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::{Connection, TransactionBehavior};
use ticketflow_domain::Ticket;
use ticketflow_store::sqlite::Readers;
use ticketflow_store::StoreError;
use tokio::sync::{Mutex, OwnedMutexGuard};
use uuid::Uuid;

use crate::queries::{Comment, Notification};
use crate::read_store::{
    BatchTx, CommentRow, MessageRow, NotificationRow, ReadStore, ReadTx, RowWrites, StateTable,
    TicketRow,
};
use crate::Projection;

/// A SQLite failure, as the store's error: a value that does not decode is
/// corrupt data; anything else, the database failing.
pub(crate) fn db(e: rusqlite::Error) -> StoreError {
    use rusqlite::Error::*;
    match e {
        FromSqlConversionFailure(..) | InvalidColumnType(..) | IntegralValueOutOfRange(..) => {
            StoreError::Corrupt(format!("SQLite: {e}"))
        }
        _ => StoreError::Unavailable(format!("SQLite: {e}")),
    }
}

/// Runs `f` on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Unavailable(format!("SQLite task failed: {e}")))?
}

/// Rolls back what a transaction cut short left open (its future was
/// dropped mid-statement, or a rollback failed), so the next one starts clean.
fn end_leftover_transaction(conn: &Connection) -> Result<(), StoreError> {
    if !conn.is_autocommit() {
        conn.execute_batch("ROLLBACK").map_err(db)?;
    }
    Ok(())
}

/// The read models in the SQLite file at a path. Cloning shares the
/// connections.
#[derive(Clone)]
pub struct SqliteReadStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// The one connection that writes.
    writer: Arc<Mutex<Connection>>,
    readers: Arc<Readers>,
}

impl SqliteReadStore {
    /// Opens (creating if missing) the read models' file at `path` and
    /// brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        let (path, writer) = blocking(move || {
            let mut conn = schema::connect(&path).map_err(db)?;
            schema::migrate(&mut conn)?;
            Ok((path, conn))
        })
        .await?;
        Ok(Self {
            inner: Arc::new(Inner {
                readers: Arc::new(Readers::new(&path, schema::connect)),
                path,
                writer: Arc::new(Mutex::new(writer)),
            }),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on a reading connection, on a blocking thread.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.inner.readers.read(|conn| f(conn)).await
    }

    /// Empties `projection`'s tables and forgets its checkpoint, in one
    /// transaction, so that applying the log from the start rebuilds it: the
    /// embedded rebuild. Unlike PostgreSQL's there is no copy to swap in;
    /// the caller holds the data directory, so nobody reads the model while
    /// it refills, and an interrupted rebuild is finished by the server's
    /// projector, which carries on from the checkpoint. The read marks are
    /// not the projection's and stay.
    pub async fn reset(&self, projection: &dyn Projection) -> Result<(), StoreError> {
        let (tables, name) = (projection.tables(), projection.name());
        self.write(move |tx| {
            for table in tables {
                tx.execute(&format!("DELETE FROM {table}"), [])
                    .map_err(db)?;
            }
            tx.execute("DELETE FROM projection_checkpoints WHERE name = ?1", [name])
                .map_err(db)?;
            Ok(())
        })
        .await
    }

    /// Runs `f` in a transaction of the writing connection, on a blocking
    /// thread, and commits it durably: these are a client's own writes (read
    /// marks), not derived data a restart re-derives, so unlike the
    /// projections' batches they wait for the disk (`synchronous=FULL` for
    /// this one commit).
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.inner.writer.clone().lock_owned().await;
        blocking(move || {
            let mut conn = conn;
            end_leftover_transaction(&conn)?;
            conn.pragma_update(None, "synchronous", "FULL")
                .map_err(db)?;
            let out = commit_with(&mut conn, f);
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(db)?;
            out
        })
        .await
    }
}

fn commit_with<T>(
    conn: &mut Connection,
    f: impl FnOnce(&rusqlite::Transaction) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let out = f(&tx)?;
    tx.commit().map_err(db)?;
    Ok(out)
}

/// A batch's transaction: `BEGIN IMMEDIATE` on the writing connection, held
/// until commit, rollback or drop (which rolls back).
pub struct SqliteReadTx {
    /// `None` while a statement runs on a blocking thread, and once ended.
    conn: Option<OwnedMutexGuard<Connection>>,
}

impl SqliteReadTx {
    async fn begin(writer: Arc<Mutex<Connection>>) -> Result<Self, StoreError> {
        let conn = writer.lock_owned().await;
        let conn = blocking(move || {
            end_leftover_transaction(&conn)?;
            conn.execute_batch("BEGIN IMMEDIATE").map_err(db)?;
            Ok(conn)
        })
        .await?;
        Ok(Self { conn: Some(conn) })
    }

    /// Runs `f` on the transaction's connection, on a blocking thread.
    async fn run<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = self.conn.take().ok_or_else(ended)?;
        let (conn, out) = blocking(move || {
            let out = f(&conn);
            Ok((conn, out))
        })
        .await?;
        self.conn = Some(conn);
        out
    }

    async fn finish(mut self, statement: &'static str) -> Result<(), StoreError> {
        let conn = self.conn.take().ok_or_else(ended)?;
        blocking(move || conn.execute_batch(statement).map_err(db)).await
    }
}

fn ended() -> StoreError {
    StoreError::Unavailable("transaction already ended".into())
}

impl Drop for SqliteReadTx {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        let rollback = move || {
            if let Err(e) = end_leftover_transaction(&conn) {
                tracing::warn!(error = %e, "cannot roll back a dropped read-model transaction");
            }
        };
        // Off the async threads when there are some; the next begin rolls
        // back anyway should this not run.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(rollback)),
            Err(_) => rollback(),
        }
    }
}

#[async_trait]
impl ReadTx for SqliteReadTx {
    async fn load_states(
        &mut self,
        table: StateTable,
        ids: &[Uuid],
    ) -> Result<Vec<(Uuid, Ticket)>, StoreError> {
        let ids = ids.to_vec();
        self.run(move |c| write::load_states(c, table, &ids)).await
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
        let rows = states
            .iter()
            .map(|s| Ok((s.id, serde_json::to_string(s)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.run(move |c| write::save_states(c, table, &rows)).await
    }

    async fn drop_states(&mut self, table: StateTable, ids: &[Uuid]) -> Result<(), StoreError> {
        let ids = ids.to_vec();
        self.run(move |c| write::drop_states(c, table, &ids)).await
    }

    async fn upsert_tickets(&mut self, rows: &[TicketRow<'_>]) -> Result<(), StoreError> {
        let rows = rows
            .iter()
            .map(write::TicketValues::of)
            .collect::<Result<Vec<_>, _>>()?;
        self.run(move |c| write::upsert_tickets(c, &rows)).await
    }

    fn rows(&mut self) -> &mut dyn RowWrites {
        self
    }
}

#[async_trait]
impl RowWrites for SqliteReadTx {
    async fn insert_comments(&mut self, rows: &[CommentRow<'_>]) -> Result<(), StoreError> {
        let rows = rows
            .iter()
            .map(write::CommentValues::of)
            .collect::<Result<Vec<_>, _>>()?;
        self.run(move |c| write::insert_comments(c, &rows)).await
    }

    async fn advance_heads(
        &mut self,
        added: &[(Uuid, i64)],
    ) -> Result<Vec<(Uuid, i64)>, StoreError> {
        let added = added.to_vec();
        self.run(move |c| write::advance_heads(c, &added)).await
    }

    async fn insert_notifications(
        &mut self,
        rows: &[NotificationRow<'_>],
    ) -> Result<(), StoreError> {
        let rows: Vec<write::NotificationValues> =
            rows.iter().map(write::NotificationValues::of).collect();
        self.run(move |c| write::insert_notifications(c, &rows))
            .await
    }

    async fn insert_ticket_messages(&mut self, rows: &[MessageRow]) -> Result<(), StoreError> {
        let rows = rows.to_vec();
        self.run(move |c| write::insert_ticket_messages(c, &rows))
            .await
    }
}

#[async_trait]
impl BatchTx for SqliteReadTx {
    async fn lock_checkpoints(&mut self, names: &[&str]) -> Result<Vec<i64>, StoreError> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        self.run(move |c| write::lock_checkpoints(c, &names)).await
    }

    async fn set_checkpoints(&mut self, moves: &[(&str, i64)]) -> Result<(), StoreError> {
        let moves: Vec<(String, i64)> = moves.iter().map(|(n, p)| (n.to_string(), *p)).collect();
        self.run(move |c| write::set_checkpoints(c, &moves)).await
    }

    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.finish("COMMIT").await
    }

    async fn rollback(self: Box<Self>) -> Result<(), StoreError> {
        self.finish("ROLLBACK").await
    }
}

#[async_trait]
impl ReadStore for SqliteReadStore {
    async fn begin(&self) -> Result<Box<dyn BatchTx>, StoreError> {
        let tx = SqliteReadTx::begin(self.inner.writer.clone()).await?;
        Ok(Box::new(tx))
    }

    async fn ticket(&self, id: Uuid) -> Result<Option<Ticket>, StoreError> {
        self.read(move |c| queries::ticket(c, id)).await
    }

    async fn tickets(
        &self,
        project_id: Uuid,
        status_id: Option<i64>,
        assignee_id: Option<Uuid>,
        after_number: i64,
        limit: i64,
    ) -> Result<Vec<Ticket>, StoreError> {
        self.read(move |c| {
            queries::tickets(c, project_id, status_id, assignee_id, after_number, limit)
        })
        .await
    }

    async fn comments(
        &self,
        ticket_id: Uuid,
        after_version: i64,
        limit: i64,
    ) -> Result<Vec<Comment>, StoreError> {
        self.read(move |c| queries::comments(c, ticket_id, after_version, limit))
            .await
    }

    async fn notifications(
        &self,
        user_id: Uuid,
        unread_only: bool,
        after_seq: Option<i64>,
        limit: i64,
    ) -> Result<(i64, Vec<Notification>), StoreError> {
        self.read(move |c| queries::notifications(c, user_id, unread_only, after_seq, limit))
            .await
    }

    async fn notifications_since(
        &self,
        user_id: Uuid,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<Notification>, StoreError> {
        self.read(move |c| queries::notifications_since(c, user_id, after_seq, limit))
            .await
    }

    async fn ticket_messages(
        &self,
        project_id: Uuid,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        self.read(move |c| queries::ticket_messages(c, project_id, after_seq, limit))
            .await
    }

    async fn ticket_channel_head(&self, project_id: Uuid) -> Result<i64, StoreError> {
        self.read(move |c| queries::ticket_channel_head(c, project_id))
            .await
    }

    async fn notification_head(&self, user_id: Uuid) -> Result<i64, StoreError> {
        self.read(move |c| queries::notification_head(c, user_id))
            .await
    }

    // In-process: one read of the reader thread, a lookup per channel.
    async fn ticket_channel_heads(&self, project_ids: Vec<Uuid>) -> Result<Vec<i64>, StoreError> {
        self.read(move |c| {
            let head = |id| queries::ticket_channel_head(c, id);
            project_ids.into_iter().map(head).collect()
        })
        .await
    }

    async fn notification_heads(&self, user_ids: Vec<Uuid>) -> Result<Vec<i64>, StoreError> {
        self.read(move |c| {
            let head = |id| queries::notification_head(c, id);
            user_ids.into_iter().map(head).collect()
        })
        .await
    }

    async fn unread_count(&self, user_id: Uuid) -> Result<i64, StoreError> {
        self.read(move |c| queries::unread_count(c, user_id)).await
    }

    async fn mark_read(&self, user_id: Uuid, notification_id: Uuid) -> Result<bool, StoreError> {
        self.write(move |tx| queries::mark_read(tx, user_id, notification_id))
            .await
    }

    async fn mark_all_read(&self, user_id: Uuid) -> Result<i64, StoreError> {
        self.write(move |tx| queries::mark_all_read(tx, user_id))
            .await
    }

    async fn checkpoint(&self, name: &str) -> Result<i64, StoreError> {
        let name = name.to_string();
        self.read(move |c| queries::checkpoint(c, &name)).await
    }

    async fn checkpoints(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.read(queries::checkpoints).await
    }
}
