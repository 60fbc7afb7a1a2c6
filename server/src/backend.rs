//! The storage and broker of each mode, and what a process builds on them:
//! workers, the API's state, the routes of its roles (health included).

use std::future::Future;
use std::sync::Arc;

use anyhow::{bail, Context};
use axum::extract::ConnectInfo;
use axum::serve::{Listener, ListenerExt};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use ticketflow_app::{AppState, Drain, Origins, RateLimiters, RateLimits, Shared, TokenKeys};
use ticketflow_nats::{Broker, Bus};
use ticketflow_projections::{PgReadStore, ReadStore, SqliteReadStore};
use ticketflow_realtime::Settings;
use ticketflow_store::pg::PgStore;
use ticketflow_store::sqlite::SqliteStore;
use ticketflow_store::{Accounts, EventStore, IdempotencyStore, Watch};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::{DataDir, Metrics, Roles};

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
    /// The process's graceful shutdown, which everything built here heeds.
    drain: Drain,
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
            drain: Drain::default(),
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
            drain: Drain::default(),
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

    /// Whether this is the embedded mode's backend.
    pub(crate) fn is_embedded(&self) -> bool {
        matches!(self.kind, Kind::Embedded { .. })
    }

    /// The process's graceful shutdown: [`Drain::begin`] it to stop what was
    /// built on this backend (see [`crate::Running`]).
    pub fn drain(&self) -> &Drain {
        &self.drain
    }

    /// Starts the relay and/or the projection workers, until the drain
    /// begins; an embedded backend runs both whatever is asked (nobody else
    /// would).
    pub fn spawn_workers(
        &self,
        relay: bool,
        projections: bool,
    ) -> anyhow::Result<Vec<JoinHandle<()>>> {
        match &self.kind {
            Kind::Services {
                store,
                bus: Some(bus),
            } => {
                let stop = self.drain.token();
                crate::workers::spawn(store, bus, &self.watch, relay, projections, stop)
                    .context("configuring the workers' connections")
            }
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
                self.drain.token(),
            )),
        }
    }

    /// What every API handler and socket shares, with tokens signed by
    /// `secret`, for pages of `origins`, within `limits`.
    pub fn app_state(
        &self,
        secret: &[u8],
        origins: Origins,
        limits: &RateLimits,
        board_snapshot_every: u64,
    ) -> AppState {
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
            limits: Arc::new(RateLimiters::new(limits)),
            drain: self.drain.clone(),
            board_snapshot_every,
        })
    }

    /// The routes of one instance as `front` says: `/healthz` and `/readyz`,
    /// `GET /metrics` when it is to be served here, and the API and/or the
    /// WebSocket gateway (whose listener and presence tasks come back with
    /// them), with tokens signed by `secret`. Every request is counted (a
    /// no-op without a recorder).
    pub async fn front(
        &self,
        secret: &[u8],
        front: Front<'_>,
    ) -> anyhow::Result<(Router, Vec<JoinHandle<()>>)> {
        let Front {
            origins,
            limits,
            settings,
            roles,
            ready_max_lag,
            metrics,
            board_snapshot_every,
        } = front;
        let mut router = crate::health::routes(self, roles, ready_max_lag);
        if let Some(metrics) = metrics {
            router = router.merge(metrics.routes(self));
        }
        let mut tasks = Vec::new();
        if roles.has_doors() {
            let (doors, doors_tasks) = self
                .doors(
                    secret,
                    origins.clone(),
                    limits,
                    settings,
                    roles,
                    board_snapshot_every,
                )
                .await?;
            router = router.merge(doors);
            tasks = doors_tasks;
        }
        let router = router
            .fallback(crate::web::fallback)
            .layer(ticketflow_api::cors(origins))
            .layer(axum::middleware::from_fn(ticketflow_api::edge))
            .layer(axum::middleware::from_fn(crate::metrics::http::track));
        Ok((ticketflow_api::traced(router), tasks))
    }

    /// The API and/or the gateway, as `roles` say, and their tasks.
    async fn doors(
        &self,
        secret: &[u8],
        origins: Origins,
        limits: &RateLimits,
        settings: Settings,
        roles: Roles,
        board_snapshot_every: u64,
    ) -> anyhow::Result<(Router, Vec<JoinHandle<()>>)> {
        let state = self.app_state(secret, origins, limits, board_snapshot_every);
        let mut router = Router::new();
        // Before the first request: a session ended before this process
        // started stays ended here.
        let revocations = ticketflow_app::revocations::start(state.clone())
            .await
            .context("loading the revoked token families")?;
        let sweeping = ticketflow_app::rate_limits::sweep_idle_keys(state.limits.clone());
        let mut tasks = vec![revocations, sweeping];
        ticketflow_app::password::prepare_dummy_hash().await;
        if roles.api {
            let docs = ticketflow_api::docs::router(crate::openapi::spec())
                .context("serialising the OpenAPI description")?;
            router = router
                .merge(ticketflow_api::router(state.clone()))
                .merge(docs);
        }
        if roles.realtime {
            let Some(broker) = self.broker.clone() else {
                bail!("NATS_URL is required by the realtime role");
            };
            // Started once the broker is reachable: the API serves meanwhile.
            let (routes, starting) =
                ticketflow_realtime::start_when_connected(state, broker, settings);
            tasks.push(starting);
            router = router.merge(routes);
        }
        Ok((router, tasks))
    }
}

/// What one instance serves in front of its backend, and how.
pub struct Front<'a> {
    /// The browser pages allowed to call the API and open sockets.
    pub origins: Origins,
    pub limits: &'a RateLimits,
    /// The gateway's queue, replay and keepalive settings.
    pub settings: Settings,
    pub roles: Roles,
    /// Readiness allows the workers this many events behind the log.
    pub ready_max_lag: i64,
    /// Served here at `GET /metrics` when given.
    pub metrics: Option<&'a Metrics>,
    /// Fewest project events between two board snapshots.
    pub board_snapshot_every: u64,
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
///
/// Each request carries its peer's address (`ConnectInfo<SocketAddr>`), as
/// axum's `into_make_service_with_connect_info` would give it: rate limits
/// key on it.
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
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let with_peer = move |mut req: axum::http::Request<_>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            req
        };
        let service = TowerToHyperService::new(app.clone().map_request(with_peer));
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
