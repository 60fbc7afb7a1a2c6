//! A `ticketflow serve` process of the test's own: the binary itself, for
//! what only a real process shows (its log and its format, its umask, its
//! flags and environment, its answer to a signal, its exit status), every
//! line of its output kept.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use tokio::time::Instant;

use crate::{embedded_mode, nats_url, TestDb, JWT_SECRET};

/// Where a process keeps its data, in the test mode's kind. Several
/// processes started on one share it, as instances of one deployment.
pub enum ProcessData {
    /// A data directory of the test's own.
    Embedded(tempfile::TempDir),
    /// A database and a NATS prefix of the test's own.
    Services { db: TestDb, prefix: String },
}

impl ProcessData {
    pub async fn new() -> Self {
        if embedded_mode() {
            Self::Embedded(tempfile::tempdir().expect("tempdir"))
        } else {
            Self::Services {
                db: TestDb::create().await,
                prefix: format!("tf_{}", uuid::Uuid::new_v4().simple()),
            }
        }
    }

    /// Deletes the NATS stream a process made (the database goes with its
    /// [`TestDb`], a directory with its [`tempfile::TempDir`]).
    pub async fn remove_stream(&self) {
        if let ProcessData::Services { prefix, .. } = self {
            if let Ok(bus) = ticketflow_nats::Bus::connect(&nats_url(), prefix).await {
                let _ = bus.delete_stream().await;
            }
        }
    }

    /// The settings that point a process at this data.
    fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            ProcessData::Embedded(dir) => vec![(
                "TICKETFLOW_DATA_DIR",
                dir.path().to_string_lossy().into_owned(),
            )],
            ProcessData::Services { db, prefix } => vec![
                ("DATABASE_URL", db.url.clone()),
                ("NATS_URL", nats_url()),
                ("NATS_PREFIX", prefix.clone()),
                ("JWT_SECRET", JWT_SECRET.to_string()),
            ],
        }
    }
}

/// A running `ticketflow serve` under umask 000 (what the server keeps
/// private, it does by itself), on a free port of 127.0.0.1; killed when
/// dropped.
pub struct ServerProcess {
    child: Child,
    pub base: String,
    /// Every line written so far, stdout's and stderr's as they come.
    lines: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
}

/// An answer to [`ServerProcess::send`].
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    /// `Null` when the body is not JSON.
    pub body: Value,
}

/// Settings a test's own environment may hold that would change the
/// process's mode, secret or logs: only what the test passes counts.
const INHERITED_SETTINGS: [&str; 6] = [
    "DATABASE_URL",
    "NATS_URL",
    "JWT_SECRET",
    "LOG_FORMAT",
    "RUST_LOG",
    "TICKETFLOW_DATA_DIR",
];

impl ServerProcess {
    /// Starts `binary` (`env!("CARGO_BIN_EXE_ticketflow")`) on `data`, with
    /// `env` on top of what the data needs.
    pub fn start(binary: &str, data: &ProcessData, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut command = Command::new("sh");
        command
            .args(["-c", "umask 000 && exec \"$0\" serve \"$@\""])
            .arg(binary)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for name in INHERITED_SETTINGS {
            command.env_remove(name);
        }
        command
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("NO_COLOR", "1")
            .envs(data.env())
            .envs(env.iter().copied());
        let mut child = command.spawn().expect("spawn ticketflow");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            keep_lines(child.stdout.take().expect("stdout"), lines.clone()),
            keep_lines(child.stderr.take().expect("stderr"), lines.clone()),
        ];
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            lines,
            readers,
        }
    }

    /// The `ws://` URL of `path` on this process.
    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{path}", self.base.replacen("http://", "ws://", 1))
    }

    /// Its output so far.
    pub fn log(&self) -> String {
        lock(&self.lines).join("\n")
    }

    /// Waits (up to 20 s) until the process has written a line that
    /// `wanted` accepts, and returns it.
    pub async fn wait_for_line(&self, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = lock(&self.lines).iter().find(|l| wanted(l)).cloned();
            if let Some(line) = found {
                return line;
            }
            assert!(Instant::now() < deadline, "no such line within 20 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `GET path` answers 200 (`/healthz`: up; `/readyz`:
    /// ready); panics with the log after `within`.
    pub async fn wait_for_200(&self, path: &str, within: Duration) {
        let deadline = Instant::now() + within;
        let client = reqwest::Client::new();
        loop {
            let answer = client.get(format!("{}{path}", self.base)).send().await;
            if answer.is_ok_and(|a| a.status() == reqwest::StatusCode::OK) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{path} did not answer 200 within {within:?}; the log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends `body` (a GET without one) to `path` with a bearer `token` and
    /// `headers`, until the process answers at all (it may be starting).
    pub async fn send(
        &self,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let method = if body.is_some() {
                Method::POST
            } else {
                Method::GET
            };
            let mut request = client.request(method, format!("{}{path}", self.base));
            if let Some(body) = &body {
                request = request.json(body);
            }
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let headers = response.headers().clone();
                    let body = response.json().await.unwrap_or(Value::Null);
                    return Answer {
                        status,
                        headers,
                        body,
                    };
                }
                Err(e) if e.is_connect() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("{path}: {e}"),
            }
        }
    }

    /// Sends SIGTERM, as an orchestrator stopping it would.
    pub fn terminate(&self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
    }

    /// Its exit status, once it has exited; panics with the log if it has
    /// not within `within`.
    pub async fn exit_within(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for the process") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running {within:?} later; the log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the process and returns everything it wrote.
    pub fn stop(mut self) -> Vec<String> {
        self.kill();
        for reader in self.readers.drain(..) {
            reader.join().expect("reader");
        }
        std::mem::take(&mut *lock(&self.lines))
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Keeps `output`'s lines in `lines`, from a thread that reads to the end,
/// so the process never blocks on a full pipe.
fn keep_lines(
    output: impl Read + Send + 'static,
    lines: Arc<Mutex<Vec<String>>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            lock(&lines).push(line);
        }
    })
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}
