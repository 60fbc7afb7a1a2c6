//! Shared fixtures: a database of one's own with project PROJ (alice the
//! admin, bob and carol members), commands run through the domain and the
//! real event store, and helpers to feed projections and look at their tables.
//!
//! The event log is always PostgreSQL's; the read models are on the
//! [`Backend`] a test asks for, so one test body checks the projections on
//! every backend ([`on_each_backend!`]).

use std::sync::Arc;

use serde_json::Value;
use ticketflow_domain::inbox::{operator, InboxCommand, NO_PROJECT};
use ticketflow_domain::{
    Actor, NewMember, NewTicket, Priority, Project, ProjectCommand, Ticket, TicketChanges,
    TicketCommand,
};
use ticketflow_projections::{
    apply_batch, Applied, ChannelMessage, Outcome, PgReadStore, Projection, ReadStore,
    SqliteReadStore,
};
use ticketflow_store::pg::PgStore;
use ticketflow_store::{Append, EventStore, Metadata, StoredEvent};
use uuid::Uuid;

use crate::cast::{alice, bob, carol, meta_now as meta};
use crate::TestDb;

/// Where a test keeps its read models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    /// A `reads.db` in a temporary directory.
    Sqlite,
}

/// Generates, for each `async fn name(backend: Backend)` listed, a module
/// `name` with one test per backend (`name::postgres`, ...).
#[macro_export]
macro_rules! on_each_backend {
    (threads = $threads:literal; $($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = $threads)]
            async fn postgres() {
                super::$name($crate::world::Backend::Postgres).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = $threads)]
            async fn sqlite() {
                super::$name($crate::world::Backend::Sqlite).await
            }
        }
    )+};
    ($($name:ident),+ $(,)?) => {
        $crate::on_each_backend!(threads = 2; $($name),+);
    };
}

/// A migrated database holding project PROJ, and read models on a backend.
pub struct World {
    pub store: PgStore,
    /// The read models under test.
    pub reads: Arc<dyn ReadStore>,
    pub backend: Backend,
    pub project_id: Uuid,
    pub db: TestDb,
    /// Where the SQLite read models live, removed with the world.
    dir: Option<tempfile::TempDir>,
}

impl World {
    /// With the read models on PostgreSQL, in the log's database.
    pub async fn new() -> Self {
        Self::on(Backend::Postgres).await
    }

    pub async fn on(backend: Backend) -> Self {
        let db = TestDb::create().await;
        let store = db.store().await;
        let (reads, dir): (Arc<dyn ReadStore>, _) = match backend {
            Backend::Postgres => (Arc::new(PgReadStore::new(store.pool().clone())), None),
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let reads = SqliteReadStore::open(&dir.path().join("reads.db"))
                    .await
                    .expect("open reads.db");
                (Arc::new(reads), Some(dir))
            }
        };
        let project_id = Uuid::now_v7();
        let world = Self {
            store,
            reads,
            backend,
            project_id,
            db,
            dir,
        };
        world
            .project(ProjectCommand::Create {
                meta: meta(&alice()),
                project_id,
                key: "PROJ".into(),
                name: "Project".into(),
                display_name: "Alice".into(),
            })
            .await;
        for member in [bob(), carol()] {
            world
                .project(ProjectCommand::AddMember {
                    meta: meta(&alice()),
                    user: NewMember {
                        user_id: member.id,
                        username: member.username.clone(),
                        display_name: member.username.clone(),
                    },
                })
                .await;
        }
        world
    }

    async fn project(&self, command: ProjectCommand) {
        let before = self
            .store
            .load_project(self.project_id)
            .await
            .expect("load project");
        let events = before.state.decide(command).expect("project command");
        self.store
            .append_project(Append {
                stream_id: self.project_id,
                project_id: self.project_id,
                before,
                events,
                metadata: Metadata::default(),
            })
            .await
            .expect("append project");
    }

    /// `actor` (an admin) posts an announcement to the project.
    pub async fn announce(&self, actor: &Actor, title: &str, message: &str) {
        self.project(ProjectCommand::PostAnnouncement {
            meta: meta(actor),
            announcement_id: Uuid::now_v7(),
            title: title.into(),
            message: message.into(),
        })
        .await;
    }

    /// The operator sends `user` a notice (their inbox stream).
    pub async fn notice(&self, user: &Actor, title: &str, message: &str) {
        let before = self.store.load_inbox(user.id).await.expect("load inbox");
        let events = before
            .state
            .decide(InboxCommand::SendNotice {
                meta: meta(&operator()),
                user: user.clone(),
                title: title.into(),
                message: message.into(),
            })
            .expect("inbox command");
        self.store
            .append_inbox(Append {
                stream_id: user.id,
                project_id: NO_PROJECT,
                before,
                events,
                metadata: Metadata::default(),
            })
            .await
            .expect("append inbox");
    }

    async fn project_state(&self) -> Project {
        self.store
            .load_project(self.project_id)
            .await
            .expect("load project")
            .state
    }

    /// Runs a ticket command against the stored ticket and appends its events.
    async fn ticket_command(&self, ticket_id: Uuid, command: TicketCommand) -> Ticket {
        let before = self.store.load_ticket(ticket_id).await.expect("load");
        let events = before.state.decide(command).expect("ticket command");
        self.store
            .append_ticket(Append {
                stream_id: ticket_id,
                project_id: self.project_id,
                before,
                events,
                metadata: Metadata::default(),
            })
            .await
            .expect("append ticket")
            .state
    }

    /// Creates a ticket titled `title`; returns its id.
    pub async fn create(&self, actor: &Actor, title: &str, assignee: Option<&Actor>) -> Uuid {
        self.create_with(
            actor,
            NewTicket {
                ticket_id: Uuid::now_v7(),
                title: title.into(),
                description: String::new(),
                priority: Priority::Medium,
                assignee_id: assignee.map(|a| a.id),
                labels: vec![],
                status_id: None,
            },
        )
        .await
    }

    pub async fn create_with(&self, actor: &Actor, ticket: NewTicket) -> Uuid {
        let id = ticket.ticket_id;
        let project = self.project_state().await.view();
        self.ticket_command(
            id,
            TicketCommand::Create {
                meta: meta(actor),
                project,
                ticket,
            },
        )
        .await;
        id
    }

    pub async fn update(&self, actor: &Actor, ticket_id: Uuid, changes: TicketChanges) -> Ticket {
        let project = self.project_state().await.view();
        self.ticket_command(
            ticket_id,
            TicketCommand::Update {
                meta: meta(actor),
                project,
                changes,
            },
        )
        .await
    }

    pub async fn status(&self, actor: &Actor, ticket_id: Uuid, status_id: i64) -> Ticket {
        let changes = TicketChanges {
            status_id: Some(status_id),
            ..TicketChanges::default()
        };
        self.update(actor, ticket_id, changes).await
    }

    pub async fn assign(&self, actor: &Actor, ticket_id: Uuid, to: Option<&Actor>) -> Ticket {
        let changes = TicketChanges {
            assignee_id: Some(to.map(|a| a.id)),
            ..TicketChanges::default()
        };
        self.update(actor, ticket_id, changes).await
    }

    /// Adds a comment; returns its id.
    pub async fn comment(&self, actor: &Actor, ticket_id: Uuid, body: &str) -> Uuid {
        let comment_id = Uuid::now_v7();
        let project = self.project_state().await.view();
        self.ticket_command(
            ticket_id,
            TicketCommand::Comment {
                meta: meta(actor),
                project,
                comment_id,
                body: body.into(),
            },
        )
        .await;
        comment_id
    }

    pub async fn delete(&self, actor: &Actor, ticket_id: Uuid) {
        let project = self.project_state().await.view();
        self.ticket_command(
            ticket_id,
            TicketCommand::Delete {
                meta: meta(actor),
                project,
            },
        )
        .await;
    }

    /// A connection to the log's database (where the PostgreSQL read models are).
    pub async fn client(&self) -> deadpool_postgres::Object {
        self.store.pool().get().await.expect("connection")
    }

    /// The whole log.
    pub async fn log(&self) -> Vec<StoredEvent> {
        self.store.read_all(0, 1_000_000).await.expect("read log")
    }

    pub async fn checkpoint(&self, name: &str) -> i64 {
        self.reads.checkpoint(name).await.expect("checkpoint")
    }

    /// Applies `events` as one batch.
    pub async fn apply(&self, projection: &dyn Projection, events: &[StoredEvent]) -> Applied {
        self.outcome(projection, events).await.applied
    }

    /// Applies `events` as one batch, and returns the messages it stored too.
    pub async fn outcome(&self, projection: &dyn Projection, events: &[StoredEvent]) -> Outcome {
        apply_batch(self.reads.as_ref(), projection, events)
            .await
            .expect("apply")
    }

    /// Feeds `projection` every event after its checkpoint, as a live worker
    /// filling from the store would.
    pub async fn sync(&self, projection: &dyn Projection) -> Applied {
        self.sync_outcome(projection).await.applied
    }

    /// Like [`World::sync`], and returns what a live worker publishes after
    /// that batch: the channel messages it stored.
    pub async fn sync_messages(&self, projection: &dyn Projection) -> Vec<ChannelMessage> {
        self.sync_outcome(projection).await.messages
    }

    async fn sync_outcome(&self, projection: &dyn Projection) -> Outcome {
        let at = self.checkpoint(projection.name()).await;
        let events = self.store.read_all(at, 1_000_000).await.expect("read");
        self.outcome(projection, &events).await
    }

    pub async fn sync_all(&self) {
        for projection in ticketflow_projections::all() {
            self.sync(projection.as_ref()).await;
        }
    }

    /// Every row of `table` as a JSON array of objects, in a fixed order;
    /// ids as UUID strings, flags as booleans, stored JSON as JSON.
    pub async fn dump(&self, table: &str) -> Value {
        match self.backend {
            Backend::Postgres => self.dump_pg(table).await,
            Backend::Sqlite => self.dump_sqlite(table),
        }
    }

    async fn dump_pg(&self, table: &str) -> Value {
        let client = self.client().await;
        let sql = format!(
            "SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]'::jsonb)
             FROM {table} t"
        );
        client
            .query_one(&sql, &[])
            .await
            .expect("dump")
            .get::<_, Value>(0)
    }

    /// The rows of `table` whose `column` holds `value`.
    pub async fn rows_where(&self, table: &str, column: &str, value: Value) -> Vec<Value> {
        let rows = self.dump(table).await;
        rows.as_array()
            .expect("rows")
            .iter()
            .filter(|r| r[column] == value)
            .cloned()
            .collect()
    }

    /// The rows of every table of `projection`, by table.
    pub async fn dump_projection(&self, projection: &dyn Projection) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        for table in projection.tables() {
            out.push((table.to_string(), self.dump(table).await));
        }
        out
    }

    /// Empties `projection`'s tables and forgets its checkpoint.
    pub async fn reset(&self, projection: &dyn Projection) {
        match self.backend {
            Backend::Postgres => self.reset_pg(projection).await,
            Backend::Sqlite => self.reset_sqlite(projection),
        }
    }

    async fn reset_pg(&self, projection: &dyn Projection) {
        let client = self.client().await;
        let tables = projection.tables().join(", ");
        client
            .batch_execute(&format!("TRUNCATE {tables}"))
            .await
            .expect("truncate");
        client
            .execute(
                "DELETE FROM projection_checkpoints WHERE name = $1",
                &[&projection.name()],
            )
            .await
            .expect("forget checkpoint");
    }

    /// The directory of the SQLite read models.
    pub fn dir_path(&self) -> &std::path::Path {
        self.dir.as_ref().expect("a SQLite world").path()
    }

    /// A connection of the test's own to the SQLite read models.
    fn sqlite(&self) -> rusqlite::Connection {
        let dir = self.dir.as_ref().expect("a SQLite world");
        let conn = rusqlite::Connection::open(dir.path().join("reads.db")).expect("open");
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .expect("busy timeout");
        conn
    }

    /// Like [`World::dump_pg`]: 16-byte blobs are UUIDs, `deleted` a flag,
    /// `state` and `author` JSON text.
    fn dump_sqlite(&self, table: &str) -> Value {
        use rusqlite::types::ValueRef;
        let conn = self.sqlite();
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table}"))
            .expect("dump");
        let names: Vec<String> = stmt.column_names().map(|n| n.to_string()).collect();
        let mut rows: Vec<Value> = stmt
            .query_map([], |r| {
                let mut row = serde_json::Map::new();
                for (i, name) in names.iter().enumerate() {
                    let value = match r.get_ref(i)? {
                        ValueRef::Null => Value::Null,
                        ValueRef::Integer(n) if name == "deleted" => Value::Bool(n != 0),
                        ValueRef::Integer(n) => n.into(),
                        ValueRef::Real(x) => x.into(),
                        ValueRef::Text(t) => {
                            let text = String::from_utf8_lossy(t).into_owned();
                            match name.as_str() {
                                "state" | "author" => {
                                    serde_json::from_str(&text).expect("stored JSON")
                                }
                                _ => Value::String(text),
                            }
                        }
                        ValueRef::Blob(b) => match Uuid::from_slice(b) {
                            Ok(id) => Value::String(id.to_string()),
                            Err(_) => Value::String(format!("{b:?}")),
                        },
                    };
                    row.insert(name.clone(), value);
                }
                Ok(Value::Object(row))
            })
            .expect("dump")
            .collect::<Result<_, _>>()
            .expect("dump rows");
        rows.sort_by_key(|row| row.to_string());
        Value::Array(rows)
    }

    fn reset_sqlite(&self, projection: &dyn Projection) {
        let conn = self.sqlite();
        for table in projection.tables() {
            conn.execute(&format!("DELETE FROM {table}"), [])
                .expect("empty");
        }
        conn.execute(
            "DELETE FROM projection_checkpoints WHERE name = ?1",
            [projection.name()],
        )
        .expect("forget checkpoint");
    }
}
