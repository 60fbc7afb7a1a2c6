//! A ticketflow server under test: a child process of the release binary, on
//! its own database and NATS prefix, torn down (database and stream) on stop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::process::{Child, Command};

/// Where the run's services are and what it may name.
#[derive(Clone)]
pub struct Services {
    pub server_bin: PathBuf,
    /// A URL of the PostgreSQL server's maintenance database (databases are
    /// created and dropped through it).
    pub admin_url: String,
    pub nats_url: String,
    /// Unique to this run; every database and prefix starts with it.
    pub run_id: String,
    pub log_dir: PathBuf,
}

impl Services {
    /// A fresh, empty database named for `purpose`.
    pub async fn database(&self, purpose: &str) -> anyhow::Result<Database> {
        let name = format!("{}_{purpose}", self.run_id);
        let admin = connect(&self.admin_url).await?;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .with_context(|| format!("creating database {name}"))?;
        Ok(Database {
            url: with_database(&self.admin_url, &name),
            name,
            admin_url: self.admin_url.clone(),
        })
    }

    /// The database called `name`, created empty if it does not exist yet;
    /// kept by whoever asked for it (no run id in its name, nothing drops it).
    pub async fn kept_database(&self, name: &str) -> anyhow::Result<Database> {
        let admin = connect(&self.admin_url).await?;
        let exists = admin
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await
            .with_context(|| format!("looking for database {name}"))?
            .is_some();
        if !exists {
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .with_context(|| format!("creating database {name}"))?;
        }
        Ok(Database {
            url: with_database(&self.admin_url, name),
            name: name.to_string(),
            admin_url: self.admin_url.clone(),
        })
    }

    /// Runs `ticketflow <args>` against `db` to completion, returning stderr.
    pub async fn run_cli(&self, db: &Database, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(&self.server_bin)
            .args(args)
            .env("DATABASE_URL", &db.url)
            .env("RUST_LOG", "warn")
            .output()
            .await
            .with_context(|| format!("running {}", self.server_bin.display()))?;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() {
            bail!("ticketflow {args:?} failed ({}): {stderr}", out.status);
        }
        Ok(stderr)
    }
}

pub struct Database {
    pub name: String,
    pub url: String,
    admin_url: String,
}

impl Database {
    pub async fn drop(self) -> anyhow::Result<()> {
        let admin = connect(&self.admin_url).await?;
        admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await
            .with_context(|| format!("dropping database {}", self.name))
    }
}

/// Settings a scenario may change.
#[derive(Default)]
pub struct Options {
    pub queue_limit: Option<usize>,
    /// `--roles` (all by default).
    pub roles: Option<&'static str>,
}

pub struct Server {
    child: Child,
    pub base_url: String,
    pub ws_base: String,
    db: Database,
    prefix: String,
    nats_url: String,
    /// Whether its roles made a NATS stream to remove (an API alone makes none).
    streams: bool,
}

impl Server {
    pub async fn start(services: &Services, name: &str, options: Options) -> anyhow::Result<Self> {
        let db = services.database(name).await?;
        let port = free_port()?;
        let prefix = format!("{}_{name}", services.run_id);
        let log = services.log_dir.join(format!("{name}.log"));
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = Command::new(&services.server_bin);
        command
            .arg("serve")
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", &db.url)
            .env("DATABASE_POOL_SIZE", "32")
            .env("NATS_URL", &services.nats_url)
            .env("NATS_PREFIX", &prefix)
            .env("JWT_SECRET", "bench-secret-bench-secret-bench-secret")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true);
        if let Some(limit) = options.queue_limit {
            command.env("WS_QUEUE_LIMIT", limit.to_string());
        }
        if let Some(roles) = options.roles {
            command.arg("--roles").arg(roles);
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", services.server_bin.display()))?;
        let server = Self {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            ws_base: format!("ws://127.0.0.1:{port}"),
            db,
            prefix,
            nats_url: services.nats_url.clone(),
            streams: options.roles.is_none_or(|r| r != "api"),
        };
        server.wait_ready(&log).await?;
        Ok(server)
    }

    /// Waits until the server answers HTTP (an unauthenticated request gets 401).
    async fn wait_ready(&self, log: &Path) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let client = reqwest::Client::new();
        let url = format!("{}/api/me", self.base_url);
        while Instant::now() < deadline {
            if client.get(&url).send().await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("server did not start within 60 s; see {}", log.display())
    }

    /// The URL of the server's database.
    pub fn database_url(&self) -> &str {
        &self.db.url
    }

    /// The server's `GET /metrics`, as Prometheus would scrape it.
    pub async fn scrape_metrics(&self) -> anyhow::Result<String> {
        let url = format!("{}/metrics", self.base_url);
        let response = reqwest::get(&url).await.context("scraping /metrics")?;
        let response = response.error_for_status().context("scraping /metrics")?;
        response.text().await.context("reading /metrics")
    }

    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child.id().context("server has exited")
    }

    /// Resident set size of the server process, in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?))
            .context("reading the server's /proc status")?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS in /proc status")
    }

    /// File descriptors the server process holds open (sockets included).
    pub fn open_fds(&self) -> anyhow::Result<u64> {
        let entries = std::fs::read_dir(format!("/proc/{}/fd", self.pid()?))
            .context("listing the server's /proc fd")?;
        Ok(entries.count() as u64)
    }

    /// Stops the server and removes its database and NATS stream.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.child.kill().await.context("stopping the server")?;
        if self.streams {
            let bus = ticketflow_nats::Bus::connect(&self.nats_url, &self.prefix).await?;
            bus.delete_stream().await?;
        }
        self.db.drop().await
    }
}

pub async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    tokio::spawn(connection);
    Ok(client)
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, _) = url.rsplit_once('/').unwrap_or((url, ""));
    format!("{base}/{name}")
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}
