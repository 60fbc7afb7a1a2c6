//! The storage and broker of each mode, and what a process builds on them:
//! workers, the API's state, the routes of its roles.

use std::future::Future;
use std::sync::Arc;

use anyhow::{bail, Context};
use axum::serve::{Listener, ListenerExt};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use ticketflow_app::{AppState, Origins, Shared, TokenKeys};
use ticketflow_nats::{Broker, Bus};
use ticketflow_projections::{PgReadStore, ReadStore, SqliteReadStore};
use ticketflow_realtime::Settings;
use ticketflow_store::pg::PgStore;
use ticketflow_store::sqlite::SqliteStore;
use ticketflow_store::{Accounts, EventStore, IdempotencyStore, Watch};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::{DataDir, Metrics};

/// hyper's ceiling on a request's head (its read buffer) and on its
/// number of headers: far above the API's limits, which answer with the
/// error body (hyper's own answer has none). Over its default of 100
/// headers, hyper parses each head into a heap buffer of this many slots
/// (16 KiB) instead of a stack one: an allocation per request, no more.
const HYPER_HEAD_BYTES: usize = 1 << 20;
const HYPER_HEADERS: usize = 256;

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

    /// The PostgreSQL store, unless embedded.
    pub(crate) fn postgres(&self) -> Option<&PgStore> {
        match &self.kind {
            Kind::Services { store, .. } => Some(store),
            Kind::Embedded { .. } => None,
        }
    }

    /// The NATS connection, if this process has one.
    pub(crate) fn bus(&self) -> Option<&Bus> {
        match &self.kind {
            Kind::Services { bus, .. } => bus.as_deref(),
            Kind::Embedded { .. } => None,
        }
    }

    /// The mode's name, as the start-up log and the metrics give it.
    pub(crate) fn mode(&self) -> &'static str {
        match &self.kind {
            Kind::Services { bus: Some(_), .. } => "postgres+nats",
            Kind::Services { bus: None, .. } => "postgres",
            Kind::Embedded { .. } => "embedded",
        }
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
    /// listener and presence tasks come back with them), for pages of `origins`,
    /// and `GET /metrics` when `metrics` is to be served here. Every request
    /// is counted (a no-op without a recorder).
    pub async fn front(
        &self,
        secret: &[u8],
        origins: Origins,
        settings: Settings,
        api: bool,
        realtime: bool,
        metrics: Option<&Metrics>,
    ) -> anyhow::Result<(Router, Vec<JoinHandle<()>>)> {
        let state = self.app_state(secret, origins.clone());
        let mut router = Router::new();
        // Before the first request: a session ended before this process
        // started stays ended here.
        let revocations = ticketflow_app::revocations::start(state.clone())
            .await
            .context("loading the revoked token families")?;
        let mut tasks = vec![revocations];
        ticketflow_app::password::prepare_dummy_hash().await;
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
        if let Some(metrics) = metrics {
            router = router.merge(metrics.routes(self));
        }
        let router = router
            .fallback(crate::web::fallback)
            .layer(ticketflow_api::cors(origins))
            .layer(axum::middleware::from_fn(ticketflow_api::edge))
            .layer(axum::middleware::from_fn(crate::metrics::http::track));
        Ok((router, tasks))
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets the
/// open connections finish. Every connection sends at once
/// (`TCP_NODELAY`): otherwise a live message or a response written while an
/// earlier one is still unacknowledged waits for the peer's delayed ACK,
/// tens of milliseconds.
///
/// hyper's limits on a request's head are set well above the API's (see
/// [`ticketflow_api::MAX_HEADER_BYTES`] and [`ticketflow_api::MAX_HEADERS`]):
/// a request over hyper's gets a
/// bare 431 from hyper, one over the API's the error body from the API.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
    });
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_buf_size(HYPER_HEAD_BYTES)
        .max_headers(HYPER_HEADERS);
    // WebSockets over HTTP/2 (RFC 8441), as axum's own server allows.
    builder.http2().enable_connect_protocol();
    let connections = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, _) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .into_owned();
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.shutdown().await;
    Ok(())
}
