//! A `ticketflow serve` process of the test's own: the binary itself, for
//! what only the binary does (its log and its format, its umask, its flags
//! and environment), every line of its output kept.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;

use crate::{embedded_mode, TestDb, JWT_SECRET};

/// Where a process keeps its data, in the test mode's kind.
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
}

fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4333".to_string())
}

/// A running `ticketflow serve` under umask 000 (what the server keeps
/// private, it does by itself), on a free port of 127.0.0.1.
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

impl ServerProcess {
    /// Starts `binary` (`env!("CARGO_BIN_EXE_ticketflow")`) on `data`, with
    /// `env` on top of what the data needs.
    pub fn start(binary: &str, data: &ProcessData, env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut command = Command::new("sh");
        command
            .args(["-c", "umask 000 && exec \"$0\" serve \"$@\""])
            .arg(binary)
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("NO_COLOR", "1")
            .env_remove("DATABASE_URL")
            .env_remove("NATS_URL")
            .env_remove("LOG_FORMAT")
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match data {
            ProcessData::Embedded(dir) => {
                command.arg("--data-dir").arg(dir.path());
            }
            ProcessData::Services { db, prefix } => {
                command
                    .env("DATABASE_URL", &db.url)
                    .env("NATS_URL", nats_url())
                    .env("NATS_PREFIX", prefix)
                    .env("JWT_SECRET", JWT_SECRET);
            }
        }
        let mut child = command.spawn().expect("spawn ticketflow");
        let outputs: [Box<dyn std::io::Read + Send>; 2] = [
            Box::new(child.stdout.take().expect("stdout")),
            Box::new(child.stderr.take().expect("stderr")),
        ];
        let lines = Arc::new(Mutex::new(Vec::new()));
        let readers = outputs
            .into_iter()
            .map(|output| {
                let lines = lines.clone();
                std::thread::spawn(move || {
                    for line in std::io::BufReader::new(output)
                        .lines()
                        .map_while(Result::ok)
                    {
                        lines.lock().expect("lines").push(line);
                    }
                })
            })
            .collect();
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            lines,
            readers,
        }
    }

    /// Waits (up to 20 s) until the process has written a line that
    /// `wanted` accepts, and returns it.
    pub async fn wait_for_line(&self, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let found = self
                .lines
                .lock()
                .expect("lines")
                .iter()
                .find(|l| wanted(l))
                .cloned();
            if let Some(line) = found {
                return line;
            }
            assert!(Instant::now() < deadline, "no such line within 20 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
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

    /// Stops the process and returns everything it wrote.
    pub fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            reader.join().expect("reader");
        }
        std::mem::take(&mut *self.lines.lock().expect("lines"))
    }
}
