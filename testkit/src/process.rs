//! The `ticketflow` binary as a child process, for what only a real process
//! shows: its answer to a signal, its exit status, its log.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// A `ticketflow serve` process on a free port of 127.0.0.1; killed when
/// dropped.
pub struct ServerProcess {
    child: Child,
    pub base: String,
    /// Its output, line by line (stdout and stderr).
    log: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Starts `binary serve` (tests pass `env!("CARGO_BIN_EXE_ticketflow")`)
    /// with `env` besides `BIND_ADDR`, and nothing inherited that selects a
    /// mode or a secret.
    pub fn serve(binary: &str, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .env_remove("DATABASE_URL")
            .env_remove("NATS_URL")
            .env_remove("JWT_SECRET")
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn ticketflow");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        keep_lines(stdout, log.clone());
        keep_lines(stderr, log.clone());
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// The `ws://` URL of `path` on this process.
    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{path}", self.base.replacen("http://", "ws://", 1))
    }

    /// Its output so far.
    pub fn log(&self) -> String {
        lock(&self.log).join("\n")
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
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Keeps `output`'s lines in `log`, from a thread that reads to the end, so
/// the process never blocks on a full pipe.
fn keep_lines(output: impl Read + Send + 'static, log: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            lock(&log).push(line);
        }
    });
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}
