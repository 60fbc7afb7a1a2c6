//! The deployment under test, every process started here and owned by the
//! run: a private PostgreSQL cluster, a three-node NATS JetStream cluster and
//! three ticketflow instances, all on loopback ports of their own.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use tokio::process::{Child, Command};

/// The subject prefix of the deployment (its stream is `CHAOS_EVENTS`).
pub const PREFIX: &str = "chaos";
pub const STREAM: &str = "CHAOS_EVENTS";
pub const DATABASE: &str = "chaos";
/// The gateway's ping timing in the run: short, so that a paused gateway
/// outlasts it within a short schedule, yet longer than the gateway's 5 s
/// send deadline, so that a client that stops reading is a slow consumer
/// (4008) before it is an idle one.
pub const PING_EVERY: Duration = Duration::from_secs(3);
pub const IDLE_LIMIT: Duration = Duration::from_secs(10);
/// Small, so that a client that stops reading is closed (4008) in seconds.
const WS_QUEUE_LIMIT: usize = 256;
const JWT_SECRET: &str = "chaos-run-secret-chaos-run-secret";

/// A port free right now on 127.0.0.1.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Runs a command to completion, failing with its output when it fails.
async fn run(command: &mut Command) -> anyhow::Result<()> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {command:?}"))?;
    ensure!(
        out.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// Polls `ready` every 100 ms until it holds or `limit` passes.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut ready: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !ready().await {
        if Instant::now() > deadline {
            bail!("{what}: not within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

async fn port_open(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
}

fn log_file(path: &Path) -> anyhow::Result<Stdio> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    Ok(file.into())
}

/// A PostgreSQL cluster of its own (run as the `postgres` user: initdb
/// refuses root), restartable.
pub struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
}

impl Postgres {
    pub async fn init(bin: &Path, work: &Path) -> anyhow::Result<Self> {
        let dir = work.join("pg");
        std::fs::create_dir_all(&dir)?;
        run(Command::new("chown").arg("postgres:postgres").arg(&dir)).await?;
        let pg = Self {
            bin: bin.to_path_buf(),
            dir,
            port: free_port()?,
        };
        run(pg
            .as_postgres("initdb")
            .args(["-U", "postgres", "--auth=trust", "-D"])
            .arg(&pg.dir))
        .await?;
        pg.start().await?;
        Ok(pg)
    }

    fn as_postgres(&self, tool: &str) -> Command {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(tool));
        command
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub async fn start(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off",
            self.port,
            self.dir.display()
        );
        run(self
            .as_postgres("pg_ctl")
            .arg("-D")
            .arg(&self.dir)
            .args(["-w", "-o", &options, "-l"])
            .arg(self.dir.join("server.log"))
            .arg("start"))
        .await
    }

    /// Stops at once, as a crash would (no checkpoint, recovery on start).
    pub async fn crash(&self) -> anyhow::Result<()> {
        run(self.as_postgres("pg_ctl").arg("-D").arg(&self.dir).args([
            "-m",
            "immediate",
            "-w",
            "stop",
        ]))
        .await
    }

    pub async fn connect(&self, database: &str) -> anyhow::Result<tokio_postgres::Client> {
        let (client, connection) =
            tokio_postgres::connect(&self.url(database), tokio_postgres::NoTls)
                .await
                .with_context(|| format!("connecting to {database}"))?;
        tokio::spawn(connection);
        Ok(client)
    }
}

impl Drop for Postgres {
    /// The cluster never outlives the run, whatever ends it.
    fn drop(&mut self) {
        let _ = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.dir)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// One node of the NATS cluster.
pub struct NatsNode {
    pub name: String,
    pub port: u16,
    cluster_port: u16,
    routes: String,
    dir: PathBuf,
    child: Option<Child>,
}

pub struct Nats {
    bin: PathBuf,
    pub nodes: Vec<NatsNode>,
}

impl Nats {
    pub async fn start(bin: &Path, work: &Path, size: usize) -> anyhow::Result<Self> {
        let ports = (0..size)
            .map(|_| Ok((free_port()?, free_port()?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let routes = ports
            .iter()
            .map(|(_, c)| format!("nats://127.0.0.1:{c}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut nats = Self {
            bin: bin.to_path_buf(),
            nodes: ports
                .iter()
                .enumerate()
                .map(|(i, &(port, cluster_port))| NatsNode {
                    name: format!("n{}", i + 1),
                    port,
                    cluster_port,
                    routes: routes.clone(),
                    dir: work.join(format!("nats-n{}", i + 1)),
                    child: None,
                })
                .collect(),
        };
        for i in 0..size {
            nats.start_node(i).await?;
        }
        nats.wait_for_jetstream().await?;
        Ok(nats)
    }

    /// Until the cluster has elected its JetStream meta leader (streams
    /// cannot be created before).
    async fn wait_for_jetstream(&self) -> anyhow::Result<()> {
        let client = async_nats::connect(self.url().split(',').next().unwrap_or_default()).await?;
        let js = async_nats::jetstream::new(client);
        wait_until(
            Duration::from_secs(30),
            "JetStream cluster ready",
            || async { js.query_account().await.is_ok() },
        )
        .await
    }

    /// Every node's client URL, comma-separated.
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub async fn start_node(&mut self, i: usize) -> anyhow::Result<()> {
        let node = &mut self.nodes[i];
        std::fs::create_dir_all(&node.dir)?;
        let log = log_file(&node.dir.with_extension("log"))?;
        let child = Command::new(&self.bin)
            .args(["-a", "127.0.0.1", "-p", &node.port.to_string()])
            .args(["--server_name", &node.name, "--cluster_name", "chaos"])
            .args([
                "--cluster",
                &format!("nats://127.0.0.1:{}", node.cluster_port),
            ])
            .args(["--routes", &node.routes, "-js", "-sd"])
            .arg(&node.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting nats-server")?;
        node.child = Some(child);
        let port = node.port;
        wait_until(Duration::from_secs(20), "nats-server listening", || {
            port_open(port)
        })
        .await
    }

    pub async fn kill_node(&mut self, i: usize) -> anyhow::Result<()> {
        kill(&mut self.nodes[i].child).await
    }
}

async fn kill(child: &mut Option<Child>) -> anyhow::Result<()> {
    if let Some(mut child) = child.take() {
        child.start_kill().context("kill -9")?;
        child.wait().await?;
    }
    Ok(())
}

/// Sends `signal` (e.g. "STOP", "CONT", "TERM") to a process.
async fn signal(pid: u32, signal: &str) -> anyhow::Result<()> {
    run(Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string()))
    .await
}

/// One `ticketflow serve` with every role.
pub struct Instance {
    pub port: u16,
    log: PathBuf,
    child: Option<Child>,
}

impl Instance {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }
}

/// The three instances and what they share.
pub struct Servers {
    bin: PathBuf,
    database_url: String,
    nats_url: String,
    pub instances: Vec<Instance>,
}

impl Servers {
    pub async fn start(
        bin: &Path,
        work: &Path,
        database_url: String,
        nats_url: String,
        count: usize,
    ) -> anyhow::Result<Self> {
        let mut servers = Self {
            bin: bin.to_path_buf(),
            database_url,
            nats_url,
            instances: Vec::new(),
        };
        for i in 0..count {
            servers.instances.push(Instance {
                port: free_port()?,
                log: work.join(format!("ticketflow-{}.log", i + 1)),
                child: None,
            });
        }
        for i in 0..count {
            servers.start_instance(i).await?;
        }
        Ok(servers)
    }

    pub async fn start_instance(&mut self, i: usize) -> anyhow::Result<()> {
        let instance = &mut self.instances[i];
        let child = Command::new(&self.bin)
            .arg("serve")
            .env("BIND_ADDR", format!("127.0.0.1:{}", instance.port))
            .env("DATABASE_URL", &self.database_url)
            .env("NATS_URL", &self.nats_url)
            .env("NATS_PREFIX", PREFIX)
            .env("NATS_STREAM_REPLICAS", "3")
            .env("JWT_SECRET", JWT_SECRET)
            .env("WS_QUEUE_LIMIT", WS_QUEUE_LIMIT.to_string())
            .env("WS_PING_EVERY_MS", PING_EVERY.as_millis().to_string())
            .env("WS_IDLE_LIMIT_MS", IDLE_LIMIT.as_millis().to_string())
            .env("RUST_LOG", "info,tower_http=warn")
            .stdin(Stdio::null())
            .stdout(log_file(&instance.log)?)
            .stderr(log_file(&instance.log)?)
            .kill_on_drop(true)
            .spawn()
            .context("starting ticketflow")?;
        let port = instance.port;
        let child = instance.child.insert(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !port_open(port).await {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "instance {} exited at start ({status}); see {}",
                    i + 1,
                    instance.log.display()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "instance {} not listening after 60 s; see {}",
                    i + 1,
                    instance.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    pub async fn kill_instance(&mut self, i: usize) -> anyhow::Result<()> {
        kill(&mut self.instances[i].child).await
    }

    pub async fn pause(&self, i: usize) -> anyhow::Result<()> {
        signal(self.pid(i)?, "STOP").await
    }

    pub async fn resume(&self, i: usize) -> anyhow::Result<()> {
        signal(self.pid(i)?, "CONT").await
    }

    fn pid(&self, i: usize) -> anyhow::Result<u32> {
        self.instances[i]
            .pid()
            .with_context(|| format!("instance {} is not running", i + 1))
    }

    /// Stops every instance cleanly (SIGTERM), so the database has no
    /// clients left.
    pub async fn stop_all(&mut self) -> anyhow::Result<()> {
        for instance in &mut self.instances {
            if let Some(mut child) = instance.child.take() {
                if let Some(pid) = child.id() {
                    signal(pid, "TERM").await?;
                }
                if tokio::time::timeout(Duration::from_secs(15), child.wait())
                    .await
                    .is_err()
                {
                    child.start_kill()?;
                    child.wait().await?;
                }
            }
        }
        Ok(())
    }

    /// Which instance holds the leadership of `role` (relay, projections):
    /// the PostgreSQL session holding its advisory lock, traced to the
    /// process owning that connection's local port.
    pub async fn leader(&self, db: &tokio_postgres::Client, role: &str) -> anyhow::Result<usize> {
        let key = lock_key(role);
        let rows = db
            .query(
                "SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                 WHERE l.locktype = 'advisory' AND l.granted \
                   AND l.classid::bigint = $1 AND l.objid::bigint = $2",
                &[
                    &((key as u64 >> 32) as i64),
                    &((key as u64 & 0xffff_ffff) as i64),
                ],
            )
            .await?;
        let row = rows.first().with_context(|| format!("no {role} leader"))?;
        let port: i32 = row.get(0);
        let inode = socket_inode(port as u16)?;
        for (i, instance) in self.instances.iter().enumerate() {
            if let Some(pid) = instance.pid() {
                if owns_socket(pid, &inode) {
                    return Ok(i);
                }
            }
        }
        bail!("the {role} leader's connection (port {port}) belongs to no instance")
    }
}

/// The server's advisory lock key of a role (store/src/pg/leader.rs: FNV-1a).
fn lock_key(role: &str) -> i64 {
    let hash = role.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    hash as i64
}

/// The inode of the IPv4 TCP socket bound to local `port`.
fn socket_inode(port: u16) -> anyhow::Result<String> {
    let table = std::fs::read_to_string("/proc/net/tcp")?;
    let local = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.len() > 9 && cols[1].ends_with(&local))
        .map(|cols| cols[9].to_string())
        .with_context(|| format!("no socket on local port {port}"))
}

fn owns_socket(pid: u32, inode: &str) -> bool {
    let wanted = format!("socket:[{inode}]");
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == wanted))
}
