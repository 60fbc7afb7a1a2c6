//! The storage and broker of each mode, and what a process builds on them:
//! workers, the API's state, the routes of its roles.

use std::future::Future;
use std::sync::Arc;

use anyhow::{bail, Context};
use axum::serve::ListenerExt;
use axum::Router;
use ticketflow_app::{AppState, Origins, Shared, TokenKeys};
use ticketflow_nats::{Broker, Bus};
use ticketflow_projections::{PgReadStore, ReadStore, SqliteReadStore};
use ticketflow_realtime::Settings;
use ticketflow_store::pg::PgStore;
use ticketflow_store::sqlite::SqliteStore;
use ticketflow_store::{Accounts, EventStore, IdempotencyStore, Watch};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::DataDir;

/// The subject prefix of an embedded process (its broker is its own).
const EMBEDDED_PREFIX: &str = "ticketflow";

/// The storage and broker a process runs on.
#[derive(Clone)]
pub struct Backend {
    pub events: Arc<dyn EventStore>,
    pub accounts: Arc<dyn Accounts>,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub reads: Arc<dyn ReadStore>,
    pub watch: Watch,
    /// Absent for a PostgreSQL process without NATS (an API-only instance).
    pub broker: Option<Broker>,
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    Services {
        store: Arc<PgStore>,
        bus: Option<Arc<Bus>>,
    },
    Embedded {
        store: Arc<SqliteStore>,
        broker: Broker,
        /// Held for as long as any clone of the backend lives.
        dir: Arc<DataDir>,
    },
}

impl Backend {
    /// PostgreSQL for the log and the read models, NATS (needed by every role
    /// but the API) for the stream and the broker. Each call follows the log
    /// anew (a LISTEN connection), as a separate instance would.
    pub fn services(store: PgStore, bus: Option<Bus>) -> Self {
        let shared = Arc::new(store);
        Self {
            events: shared.clone(),
            accounts: shared.clone(),
            idempotency: shared.clone(),
            reads: Arc::new(PgReadStore::new(shared.pool().clone())),
            watch: shared.watch(),
            broker: bus.as_ref().map(Bus::broker),
            kind: Kind::Services {
                store: shared,
                bus: bus.map(Arc::new),
            },
        }
    }

    /// The data directory's SQLite files and an in-process broker.
    pub async fn embedded(dir: DataDir) -> anyhow::Result<Self> {
        let events_db = dir.events_db();
        // Opening migrates and blocks: not on the runtime's threads.
        let path = events_db.clone();
        let store = tokio::task::spawn_blocking(move || SqliteStore::open(&path))
            .await
            .context("the task opening the event log")?
            .with_context(|| format!("opening the event log {}", events_db.display()))?;
        let reads_db = dir.reads_db();
        let reads = SqliteReadStore::open(&reads_db)
            .await
            .with_context(|| format!("opening the read models {}", reads_db.display()))?;
        let shared = Arc::new(store);
        let broker = Broker::local(EMBEDDED_PREFIX);
        Ok(Self {
            events: shared.clone(),
            accounts: shared.clone(),
            idempotency: shared.clone(),
            reads: Arc::new(reads),
            watch: shared.watch(),
            broker: Some(broker.clone()),
            kind: Kind::Embedded {
                store: shared,
                broker,
                dir: Arc::new(dir),
            },
        })
    }

    /// The data directory of an embedded backend.
    pub fn data_dir(&self) -> Option<&DataDir> {
        match &self.kind {
            Kind::Embedded { dir, .. } => Some(dir),
            Kind::Services { .. } => None,
        }
    }

    /// Starts the relay and/or the projection workers; an embedded backend
    /// runs both whatever is asked (nobody else would).
    pub fn spawn_workers(
        &self,
        relay: bool,
        projections: bool,
    ) -> anyhow::Result<Vec<JoinHandle<()>>> {
        match &self.kind {
            Kind::Services {
                store,
                bus: Some(bus),
            } => crate::workers::spawn(store, bus, &self.watch, relay, projections)
                .context("configuring the workers' connections"),
            Kind::Services { bus: None, .. } if relay || projections => {
                bail!("NATS_URL is required by the relay and projections roles")
            }
            Kind::Services { bus: None, .. } => Ok(Vec::new()),
            Kind::Embedded { store, broker, .. } => Ok(crate::workers::spawn_embedded(
                self.events.clone(),
                self.reads.clone(),
                store.clone(),
                broker,
                &self.watch,
            )),
        }
    }

    /// What every API handler and socket shares, with tokens signed by
    /// `secret`, for pages of `origins`.
    pub fn app_state(&self, secret: &[u8], origins: Origins) -> AppState {
        AppState::new(Shared {
            events: self.events.clone(),
            accounts: self.accounts.clone(),
            idempotency: self.idempotency.clone(),
            tokens: Arc::new(TokenKeys::new(secret)),
            reads: self.reads.clone(),
            watch: self.watch.clone(),
            read_models: ticketflow_projections::names(),
            aggregates: Default::default(),
            broker: self.broker.clone(),
            origins,
        })
    }

    /// The routes of one instance: the API and/or the WebSocket gateway (whose
    /// listener and presence tasks come back with them), for pages of `origins`.
    pub async fn front(
        &self,
        secret: &[u8],
        origins: Origins,
        settings: Settings,
        api: bool,
        realtime: bool,
    ) -> anyhow::Result<(Router, Vec<JoinHandle<()>>)> {
        let state = self.app_state(secret, origins.clone());
        let mut router = Router::new();
        let mut tasks = Vec::new();
        if api {
            router = router.merge(ticketflow_api::router(state.clone()));
        }
        if realtime {
            let Some(broker) = self.broker.clone() else {
                bail!("NATS_URL is required by the realtime role");
            };
            // Started once the broker is reachable: the API serves meanwhile.
            let (routes, starting) =
                ticketflow_realtime::start_when_connected(state, broker, settings);
            tasks.push(starting);
            router = router.merge(routes);
        }
        let router = router
            .fallback(crate::web::fallback)
            .layer(ticketflow_api::cors(origins));
        Ok((router, tasks))
    }
}

/// Serves `app` on `listener` until `shutdown` completes. Every connection
/// sends at once (`TCP_NODELAY`): otherwise a live message or a response
/// written while an earlier one is still unacknowledged waits for the peer's
/// delayed ACK, tens of milliseconds.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
