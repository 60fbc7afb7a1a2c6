//! `ticketflow`: the server binary.
//!
//! `ticketflow serve` runs every role in one process; `--roles` picks some.
//! With neither DATABASE_URL nor NATS_URL it runs embedded: SQLite files in a
//! data directory and an in-process broker. `ticketflow migrate` applies the
//! PostgreSQL schema and exits; `ticketflow notify` sends one user an
//! operator's notification; `ticketflow health` asks a running server's
//! `/healthz` or `/readyz`; `ticketflow events export` writes the log out as
//! NDJSON, CSV or Parquet. Configuration comes from the environment,
//! with flags of the same meaning.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use rand::RngCore;
mod audit_cli;
mod export_cli;
mod health_cli;
mod lifecycle;
mod logging;
mod notify_cli;
mod projections_cli;
mod rate_limits_cli;

use lifecycle::{shutdown_signal, LifecycleArgs};
use ticketflow::{Backend, DataDir, Front, Metrics, MetricsArgs, Origins, Roles, Running};
use ticketflow_nats::Bus;
use ticketflow_projections::PgReadStore;
use ticketflow_realtime::{Settings, Timing};
use ticketflow_store::pg::PgStore;

/// glibc's malloc took a quarter of the server's CPU under the command
/// benchmark (many small, short-lived allocations across threads).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "ticketflow",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("TICKETFLOW_REVISION"), ")"),
    about = "Event-sourced real-time ticketing backend"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: logging::LogArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Apply database migrations and exit.
    Migrate(DatabaseArgs),
    /// Inspect or rebuild the read models.
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
        #[command(flatten)]
        database: DatabaseArgs,
        /// The embedded mode's data directory (used without DATABASE_URL).
        #[arg(
            long,
            global = true,
            env = "TICKETFLOW_DATA_DIR",
            default_value = "./ticketflow-data"
        )]
        data_dir: PathBuf,
    },
    /// Send one user a `general` notification (an event in their inbox stream).
    Notify {
        /// The user's username.
        #[arg(long)]
        user: String,
        /// 1 to 200 characters.
        #[arg(long)]
        title: String,
        /// 1 to 2,000 characters.
        #[arg(long)]
        message: String,
        #[command(flatten)]
        database: DatabaseArgs,
        /// The embedded mode's data directory (used without DATABASE_URL; stop the server first).
        #[arg(long, env = "TICKETFLOW_DATA_DIR", default_value = "./ticketflow-data")]
        data_dir: PathBuf,
    },
    /// Read the event log.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
        #[command(flatten)]
        database: DatabaseArgs,
        /// The embedded mode's data directory (used without DATABASE_URL).
        #[arg(
            long,
            global = true,
            env = "TICKETFLOW_DATA_DIR",
            default_value = "./ticketflow-data"
        )]
        data_dir: PathBuf,
    },
    /// Ask a running server whether it is up (/healthz) or ready (/readyz);
    /// exit 0 if so (for container health checks).
    Health(health_cli::HealthArgs),
    /// Check the event log's hash chain.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
        #[command(flatten)]
        database: DatabaseArgs,
        /// The embedded mode's data directory (used without DATABASE_URL).
        #[arg(
            long,
            global = true,
            env = "TICKETFLOW_DATA_DIR",
            default_value = "./ticketflow-data"
        )]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the hash chain and name the first position where it breaks
    /// (exit 1); exit 0 with a summary when it is intact.
    Verify {
        /// Start at this position, chaining from the stored hash before it.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i64).range(1..))]
        from: i64,
    },
}

#[derive(Subcommand)]
enum ProjectionsCommand {
    /// Each projection's position, lag and rate.
    Status,
    /// Replay the log into fresh tables and swap them in atomically.
    Rebuild {
        /// The projection to rebuild (tickets, comments, notifications).
        name: Option<String>,
        /// Rebuild every projection.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Write the log, or a selection of it, as NDJSON, CSV or Parquet.
    Export(export_cli::ExportArgs),
}

#[derive(Args)]
struct DatabaseArgs {
    /// PostgreSQL URL, e.g. postgres://postgres@127.0.0.1:5432/ticketflow
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Connections in the pool.
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value_t = 16)]
    database_pool_size: usize,
}

#[derive(Args)]
struct ServeArgs {
    #[arg(long, env = "BIND_ADDR", default_value = "127.0.0.1:8000")]
    bind_addr: SocketAddr,
    #[command(flatten)]
    database: DatabaseArgs,
    /// NATS URL, e.g. nats://127.0.0.1:4222
    #[arg(long, env = "NATS_URL")]
    nats_url: Option<String>,
    /// Prefix of the JetStream stream and subjects (several deployments may share a NATS).
    #[arg(long, env = "NATS_PREFIX", default_value = "ticketflow")]
    nats_prefix: String,
    /// Copies of the event stream a NATS cluster keeps (at most its node count).
    #[arg(long, env = "NATS_STREAM_REPLICAS", default_value_t = 1)]
    nats_stream_replicas: usize,
    /// Where the embedded mode (neither DATABASE_URL nor NATS_URL set) keeps its data.
    #[arg(long, env = "TICKETFLOW_DATA_DIR", default_value = "./ticketflow-data")]
    data_dir: PathBuf,
    /// HS256 secret for access tokens (embedded mode: generated once and kept in the data directory).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Browser origins (besides the server's own) allowed to call the API and open sockets,
    /// comma-separated, e.g. https://app.example.com,http://localhost:5173; `*` for any.
    #[arg(long, env = "CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,
    /// Development: allow running on PostgreSQL without JWT_SECRET (a random one per process),
    /// and allow pages on localhost (any port) as origins.
    #[arg(long)]
    dev: bool,
    /// Messages queued per socket before it is closed as a slow consumer (4008).
    #[arg(long, env = "WS_QUEUE_LIMIT", default_value_t = 1024)]
    ws_queue_limit: usize,
    /// How often the gateway pings each socket, in milliseconds.
    #[arg(long, env = "WS_PING_EVERY_MS", default_value_t = Timing::default().ping_every.as_millis() as u64)]
    ws_ping_every_ms: u64,
    /// How long a silent socket stays open, in milliseconds.
    #[arg(long, env = "WS_IDLE_LIMIT_MS", default_value_t = Timing::default().idle_limit.as_millis() as u64)]
    ws_idle_limit_ms: u64,
    /// Most messages one replay sends before answering resync_required.
    #[arg(long, env = "REPLAY_LIMIT", default_value_t = 100_000)]
    replay_limit: i64,
    /// Fewest project events between two snapshots of a project's board, which the
    /// board as of a moment (`GET .../tickets?as_of=`) replays from (at least the
    /// project's live ticket count apart).
    #[arg(long, env = "BOARD_SNAPSHOT_EVERY", default_value_t = 1000)]
    board_snapshot_every: u64,
    #[command(flatten)]
    rate_limits: rate_limits_cli::RateLimitArgs,
    /// Roles to run: any of api, relay, projections, realtime.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "api,relay,projections,realtime"
    )]
    roles: Vec<Role>,
    #[command(flatten)]
    lifecycle: LifecycleArgs,
    #[command(flatten)]
    metrics: MetricsArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
enum Role {
    Api,
    Relay,
    Projections,
    Realtime,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cli.log.init()?;
    match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Migrate(args) => {
            connect(&args).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Projections {
            command,
            database,
            data_dir,
        } => match (command, &database.database_url) {
            (ProjectionsCommand::Status, None) => projections_cli::status_embedded(&data_dir).await,
            (ProjectionsCommand::Rebuild { name, all }, None) => {
                projections_cli::rebuild_embedded(&data_dir, name, all).await
            }
            (ProjectionsCommand::Status, Some(_)) => {
                let store = connect(&database).await?;
                let reads = PgReadStore::new(store.pool().clone());
                projections_cli::status(&store, &reads).await
            }
            (ProjectionsCommand::Rebuild { name, all }, Some(_)) => {
                let store = connect(&database).await?;
                projections_cli::rebuild_cmd(&store, name, all).await
            }
        },
        Command::Notify {
            user,
            title,
            message,
            database,
            data_dir,
        } => {
            let notice = notify_cli::Notice {
                username: user,
                title,
                message,
            };
            match database.database_url {
                None => notify_cli::notify_embedded(&data_dir, &notice).await,
                Some(_) => notify_cli::notify_pg(&connect(&database).await?, &notice).await,
            }
        }
        Command::Events {
            command: EventsCommand::Export(args),
            database,
            data_dir,
        } => match database.database_url {
            None => export_cli::export_embedded(&data_dir, args).await,
            Some(_) => export_cli::run(&connect(&database).await?, args).await,
        },
        Command::Health(args) => health_cli::run(args).await,
        Command::Audit {
            command: AuditCommand::Verify { from },
            database,
            data_dir,
        } => match database.database_url {
            None => audit_cli::verify_embedded(&data_dir, from).await,
            Some(_) => audit_cli::verify_log(&connect(&database).await?, from).await,
        },
    }
}

/// Opens the pool and brings the schema up to date.
async fn connect(args: &DatabaseArgs) -> anyhow::Result<PgStore> {
    let Some(url) = args.database_url.as_deref() else {
        bail!("DATABASE_URL is not set: this command works on PostgreSQL");
    };
    let store = PgStore::connect(url, args.database_pool_size).context("configuring PostgreSQL")?;
    store.migrate().await.context("migrating the database")?;
    Ok(store)
}

/// The secret given, else the data directory's (embedded), else a throwaway
/// one under --dev.
fn jwt_secret(args: &ServeArgs, backend: &Backend) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = args.jwt_secret.as_deref().filter(|s| !s.is_empty()) {
        return Ok(secret.as_bytes().to_vec());
    }
    if let Some(dir) = backend.data_dir() {
        return dir.jwt_secret();
    }
    if !args.dev {
        bail!("JWT_SECRET is not set (pass --dev to run with a throwaway secret)");
    }
    tracing::warn!("--dev: using a random JWT secret; tokens die with this process");
    let mut secret = vec![0u8; 32];
    rand::thread_rng().fill_bytes(&mut secret);
    Ok(secret)
}

const ALL_ROLES: [Role; 4] = [Role::Api, Role::Relay, Role::Projections, Role::Realtime];

/// PostgreSQL and NATS when configured; embedded when neither is.
async fn backend(args: &ServeArgs) -> anyhow::Result<Backend> {
    match (&args.database.database_url, &args.nats_url) {
        (None, None) => embedded(args).await,
        (None, Some(_)) => bail!(
            "NATS_URL is set but DATABASE_URL is not: set both to run on PostgreSQL and NATS, \
             or neither to run embedded"
        ),
        (Some(_), nats_url) => {
            let store = connect(&args.database).await?;
            let bus = match nats_url {
                Some(url) => {
                    Some(connect_bus(url, &args.nats_prefix, args.nats_stream_replicas).await?)
                }
                None => None,
            };
            tracing::info!(
                mode = if bus.is_some() {
                    "postgres+nats"
                } else {
                    "postgres"
                },
                "events and read models in PostgreSQL{}",
                if bus.is_some() {
                    ", messages on NATS"
                } else {
                    "; no NATS_URL: API role only"
                }
            );
            Ok(Backend::services(store, bus))
        }
    }
}

async fn embedded(args: &ServeArgs) -> anyhow::Result<Backend> {
    if !ALL_ROLES.iter().all(|role| args.roles.contains(role)) {
        bail!(
            "--roles splits a deployment across processes, which needs PostgreSQL and NATS \
             (DATABASE_URL and NATS_URL); the embedded mode runs every role in one process"
        );
    }
    let dir = DataDir::open(&args.data_dir)?;
    let backend = Backend::embedded(dir).await?;
    tracing::info!(
        mode = "embedded",
        data_dir = %absolute(&args.data_dir).display(),
        "events and read models in SQLite under the data directory, messages in process; \
         set DATABASE_URL and NATS_URL to run on PostgreSQL and NATS (several instances)"
    );
    Ok(backend)
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The bus, connecting in the background: an unreachable NATS does not keep
/// the API from serving commands (they need only PostgreSQL); the roles that
/// need NATS wait for it (see `workers::spawn`).
async fn connect_bus(url: &str, prefix: &str, replicas: usize) -> anyhow::Result<Bus> {
    let bus = Bus::connect(url, prefix)
        .await
        .context("connecting to NATS")?
        .with_stream_replicas(replicas);
    tracing::info!(stream = bus.stream_name(), "bus configured");
    Ok(bus)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // First: whatever records before the recorder is in records nothing.
    let metrics = args.metrics.enabled.then(Metrics::install).transpose()?;
    let backend = backend(&args).await?;
    let secret = jwt_secret(&args, &backend)?;
    let has = |role| args.roles.contains(&role);
    let roles = Roles {
        api: has(Role::Api),
        relay: has(Role::Relay),
        projections: has(Role::Projections),
        realtime: has(Role::Realtime),
    };
    let workers = backend.spawn_workers(roles.relay, roles.projections)?;
    if !roles.has_doors() {
        tracing::info!("no api or realtime role: background roles only, and /healthz and /readyz");
    }
    let settings = Settings {
        queue_limit: args.ws_queue_limit,
        replay_limit: args.replay_limit,
        timing: Timing {
            ping_every: Duration::from_millis(args.ws_ping_every_ms),
            idle_limit: Duration::from_millis(args.ws_idle_limit_ms),
        },
    };
    let origins = Origins::new(&args.cors_origins, args.dev);
    let ready_max_lag = args.lifecycle.ready_max_lag;
    let limits = args.rate_limits.limits();
    // On the main address unless METRICS_ADDR names another.
    let metrics_here = metrics.as_ref().filter(|_| args.metrics.addr.is_none());
    let front = Front {
        origins,
        limits: &limits,
        settings,
        roles,
        ready_max_lag,
        metrics: metrics_here,
        board_snapshot_every: args.board_snapshot_every,
    };
    let (app, mut tasks) = backend.front(&secret, front).await?;
    if let (Some(metrics), Some(addr)) = (&metrics, args.metrics.addr) {
        tasks.push(serve_metrics(metrics, &backend, addr).await?);
    }
    let listener = tokio::net::TcpListener::bind(args.bind_addr)
        .await
        .with_context(|| format!("binding {}", args.bind_addr))?;
    tracing::info!(addr = %args.bind_addr, roles = ?args.roles, "ticketflow listening");
    let running = Running::start(backend.drain(), listener, app, workers, tasks);
    shutdown_signal().await;
    tracing::info!("shutting down (a second signal stops at once)");
    tokio::select! {
        stopped = running.stop(args.lifecycle.shutdown_timeout()) => stopped?,
        () = shutdown_signal() => bail!("stopped by a second signal before the drain finished"),
    }
    Ok(())
}

/// `GET /metrics` alone on `addr`, until the task is aborted.
async fn serve_metrics(
    metrics: &Metrics,
    backend: &Backend,
    addr: SocketAddr,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr} for metrics"))?;
    tracing::info!(%addr, "metrics listening");
    let routes = metrics.routes(backend);
    Ok(tokio::spawn(async move {
        if let Err(e) = ticketflow::serve(listener, routes, std::future::pending()).await {
            tracing::error!(error = %e, "the metrics listener failed");
        }
    }))
}
