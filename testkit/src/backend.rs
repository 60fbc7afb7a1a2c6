//! One test body, both backends: a contract test is written once as
//! `async fn name(backend: Backend)`, and [`on_both_backends!`] makes a
//! `postgres::name` and a `sqlite::name` test of it. PostgreSQL runs on a
//! database of its own (`TestDb`), SQLite on a file in a temporary directory.

use std::sync::{Arc, Mutex};

use ticketflow_store::pg::{PgStore, NOTIFY_CHECKPOINT};
use ticketflow_store::sqlite::SqliteStore;
use ticketflow_store::{Accounts, EventStore, IdempotencyStore, Watch};

use crate::TestDb;

/// Everything a contract test may call.
pub trait Store: EventStore + Accounts + IdempotencyStore {}
impl<T: EventStore + Accounts + IdempotencyStore> Store for T {}

/// Makes a `postgres::$test` and a `sqlite::$test` of each `async fn
/// $test(backend: Backend)` named.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test($crate::backend::Backend::postgres().await).await
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test($crate::backend::Backend::sqlite()).await
                }
            )*
        }
    };
}

/// Where a test's data lives, dropped with it.
pub enum Backend {
    Postgres(TestDb),
    Sqlite {
        dir: tempfile::TempDir,
        /// The one open store: one process owns the file, so every handle
        /// a test asks for is this one (a clone).
        open: Mutex<Option<SqliteStore>>,
    },
}

/// A SQLite backend checks its log against the event schemas when dropped
/// (a PostgreSQL one's [`TestDb`] does).
impl Drop for Backend {
    fn drop(&mut self) {
        if let Self::Sqlite { dir, .. } = self {
            let log = crate::schemas::sqlite_log(&dir.path().join("events.db"));
            crate::schemas::assert_log_matches(&log);
        }
    }
}

impl Backend {
    pub async fn postgres() -> Self {
        Self::Postgres(TestDb::create().await)
    }

    pub fn sqlite() -> Self {
        Self::Sqlite {
            dir: tempfile::tempdir().expect("temporary directory"),
            open: Mutex::new(None),
        }
    }

    pub fn is_sqlite(&self) -> bool {
        matches!(self, Self::Sqlite { .. })
    }

    /// A store on this backend's data. On PostgreSQL each call is another
    /// instance with its own pool (and committers); on SQLite it is the one
    /// open store.
    pub async fn store(&self) -> Arc<dyn Store> {
        match self {
            Self::Postgres(db) => Arc::new(db.store().await),
            Self::Sqlite { .. } => Arc::new(self.sqlite_store()),
        }
    }

    /// Like [`Backend::store`], with a smaller pool on PostgreSQL, for tests
    /// that open many instances (tests run in parallel under PostgreSQL's
    /// connection limit).
    pub async fn store_with_pool(&self, connections: usize) -> Arc<dyn Store> {
        match self {
            Self::Postgres(db) => Arc::new(db.store_with_pool(connections).await),
            Self::Sqlite { .. } => Arc::new(self.sqlite_store()),
        }
    }

    /// Closes the SQLite file (the next [`Backend::store`] opens it again);
    /// nothing to close on PostgreSQL. Handles still held keep it open.
    pub fn close(&self) {
        if let Self::Sqlite { open, .. } = self {
            lock(open).take();
        }
    }

    /// A watch of the log, from a store of this backend.
    pub async fn watch(&self) -> Watch {
        match self {
            Self::Postgres(db) => db.store().await.watch(),
            Self::Sqlite { .. } => self.sqlite_store().watch(),
        }
    }

    /// What a projection worker calls once it has applied `position`.
    pub async fn announce_checkpoint(&self, name: &str, position: i64) {
        let announced = match self {
            Self::Postgres(db) => {
                // As a projection batch does, inside its transaction.
                let store = db.store().await;
                let client = store.pool().get().await.expect("connection");
                let sql = format!(
                    "SELECT {NOTIFY_CHECKPOINT} FROM (SELECT $1::text, $2::bigint) AS c(name, position)"
                );
                client
                    .execute(&sql, &[&name, &position])
                    .await
                    .map(drop)
                    .map_err(Into::into)
            }
            Self::Sqlite { .. } => {
                let store = self.sqlite_store();
                store.announce_checkpoint(name, position).await
            }
        };
        announced.expect("announce a checkpoint");
    }

    /// How many rows `table` of the event store holds, counted beneath the
    /// store's API.
    pub async fn rows_in(&self, table: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM {table}");
        match self {
            Self::Postgres(db) => db.client().await.query_one(&sql, &[]).await,
            Self::Sqlite { dir, .. } => {
                let db = rusqlite::Connection::open(dir.path().join("events.db")).expect("open");
                return db.query_row(&sql, [], |r| r.get(0)).expect("count");
            }
        }
        .expect("count")
        .get(0)
    }

    /// Runs `postgres` or `sqlite` (SQL statements in the backend's dialect)
    /// on the event store, beneath the store's API.
    pub async fn run_sql(&self, postgres: &str, sqlite: &str) {
        match self {
            Self::Postgres(db) => db
                .client()
                .await
                .batch_execute(postgres)
                .await
                .expect(postgres),
            Self::Sqlite { dir, .. } => {
                let db = rusqlite::Connection::open(dir.path().join("events.db")).expect("open");
                db.execute_batch(sqlite).expect(sqlite);
            }
        }
    }

    fn sqlite_store(&self) -> SqliteStore {
        let Self::Sqlite { dir, open } = self else {
            panic!("not an SQLite backend");
        };
        lock(open)
            .get_or_insert_with(|| {
                SqliteStore::open(&dir.path().join("events.db")).expect("open events.db")
            })
            .clone()
    }

    /// Direct access to a PostgreSQL store, for the tests of its internals.
    pub async fn pg_store(&self) -> Option<PgStore> {
        match self {
            Self::Postgres(db) => Some(db.store().await),
            Self::Sqlite { .. } => None,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
