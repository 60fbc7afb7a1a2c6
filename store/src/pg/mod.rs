//! The PostgreSQL implementation of the store traits.

mod accounts;
mod append;
mod event_store;
mod group_commit;
mod idempotency;
pub mod leader;
mod load;
mod migrate;
mod watch;

use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::StoreError;

pub mod prepared;

pub use migrate::migrate;
pub use watch::{CHECKPOINTS_CHANNEL, NOTIFY_CHECKPOINT};

/// Session settings for connections whose statements only ever reach rows
/// by key (or key range) in tables that grow from nothing: the committer's
/// and the workers'. Planned while a table is tiny, a cached statement
/// would otherwise keep a plan scanning the whole table for the rest of the
/// connection's life (under the command benchmark, one run in three spent
/// most of PostgreSQL's time scanning `streams` in the appends' update).
/// A table with no index at all (`event_log_head`) is still scanned, at a
/// cost so high that it would trip JIT compilation of every statement
/// reading it (180 ms each), hence `jit=off`: nothing here runs long
/// enough to gain from it.
const KEYED_ACCESS: &str = "-c enable_seqscan=off -c jit=off";

/// How long a caller waits on PostgreSQL before it is told the database is
/// unavailable, unless `DATABASE_URL` sets `connect_timeout`: for a
/// connection from the pool, for a new connection, for checking a pooled
/// one, and for sent data to be acknowledged (`tcp_user_timeout`: a server
/// that stopped answering without closing its connections). So while
/// PostgreSQL is down, commands fail within about this long instead of
/// queueing behind a pool that cannot grow; once it is back, the pool opens
/// new connections by itself.
const WAIT_FOR_DATABASE: Duration = Duration::from_secs(5);

/// A pool of connections to one ticketflow database.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// The committer's connection ([`KEYED_ACCESS`]).
    keyed: Pool,
    /// For connections outside the pool (LISTEN).
    config: tokio_postgres::Config,
    /// Batches ticket appends; started on first use, from within the runtime.
    committer: Arc<OnceLock<group_commit::Committer>>,
}

impl PgStore {
    /// Connects lazily: the pool opens connections on first use.
    pub fn connect(database_url: &str, max_connections: usize) -> Result<Self, StoreError> {
        let mut config = tokio_postgres::Config::from_str(database_url)
            .map_err(|e| StoreError::Unavailable(format!("invalid DATABASE_URL: {e}")))?;
        let wait = config.get_connect_timeout().copied();
        let wait = wait.unwrap_or(WAIT_FOR_DATABASE);
        config
            .connect_timeout(wait)
            .tcp_user_timeout(wait)
            .keepalives_idle(wait);
        Self::with_config(config, max_connections)
    }

    /// A store on the same database whose transactions commit without
    /// waiting for the WAL flush, for workers that only write what they
    /// derive from the log (read models, checkpoints). A crash may undo
    /// their last few milliseconds of commits, checkpoint and rows alike, and
    /// they derive them again; the events themselves are never written
    /// through it.
    ///
    /// Its connections also keep to keyed access (`enable_seqscan=off`,
    /// `jit=off`: see `KEYED_ACCESS`).
    pub fn for_derived_data(&self, max_connections: usize) -> Result<Self, StoreError> {
        let options = format!("-c synchronous_commit=off {KEYED_ACCESS}");
        Self::with_config(with_options(&self.config, &options), max_connections)
    }

    fn with_config(
        config: tokio_postgres::Config,
        max_connections: usize,
    ) -> Result<Self, StoreError> {
        let keyed = with_options(&config, KEYED_ACCESS);
        Ok(Self {
            pool: pool(config.clone(), max_connections)?,
            keyed: pool(keyed, 1)?,
            config,
            committer: Arc::default(),
        })
    }

    /// Applies pending migrations; see [`migrate`].
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.pool.get().await?;
        migrate(&mut client).await
    }

    /// The connection pool, for read models that live in the same database.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    fn committer(&self) -> &group_commit::Committer {
        self.committer
            .get_or_init(|| group_commit::Committer::start(self.keyed.clone()))
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.pool.get().await?)
    }

    /// `operation`, or [`StoreError::Unavailable`] once it has waited
    /// [`WAIT_FOR_DATABASE`] (or `connect_timeout`): a server that stopped
    /// answering (paused, or cut off while its connections look open) would
    /// otherwise hold a caller for as long as it stays away. Abandoned, an
    /// operation's connection goes back to the pool with its statement in
    /// flight, answered once the server is back.
    async fn bounded<T>(
        &self,
        operation: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let wait = self.config.get_connect_timeout().copied();
        let wait = wait.unwrap_or(WAIT_FOR_DATABASE);
        tokio::time::timeout(wait, operation)
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Unavailable(format!(
                    "PostgreSQL did not answer within {wait:?}"
                )))
            })
    }
}

/// Maps a unique violation on `constraint` to [`StoreError::Taken`].
fn taken(e: tokio_postgres::Error, constraint: &str, what: &'static str) -> StoreError {
    let is_it = e.as_db_error().is_some_and(|db| {
        *db.code() == tokio_postgres::error::SqlState::UNIQUE_VIOLATION
            && db.constraint() == Some(constraint)
    });
    if is_it {
        StoreError::Taken(what)
    } else {
        e.into()
    }
}

/// `config` with session `options` (`-c name=value ...`) added.
fn with_options(config: &tokio_postgres::Config, options: &str) -> tokio_postgres::Config {
    let mut config = config.clone();
    let options = match config.get_options() {
        Some(given) => format!("{given} {options}"),
        None => options.to_string(),
    };
    config.options(&options);
    config
}

fn pool(config: tokio_postgres::Config, max_connections: usize) -> Result<Pool, StoreError> {
    let wait = config.get_connect_timeout().copied();
    let wait = wait.unwrap_or(WAIT_FOR_DATABASE);
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max_connections)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(wait))
        .create_timeout(Some(wait))
        .recycle_timeout(Some(wait))
        .build()
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}
