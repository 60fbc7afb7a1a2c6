//! The binary in embedded mode, as a newcomer runs it: no DATABASE_URL, no
//! NATS_URL, a data directory. Real processes, killed without warning, and
//! real HTTP and WebSocket clients.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use ticketflow_testkit::ws::{connect, next_json};

const STARTUP: Duration = Duration::from_secs(60);

/// A `ticketflow serve` process on a data directory.
struct Server {
    child: Child,
    base: String,
}

fn command(data_dir: &Path, port: u16) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ticketflow"));
    command
        .args(["serve", "--data-dir"])
        .arg(data_dir)
        .env_remove("DATABASE_URL")
        .env_remove("NATS_URL")
        .env_remove("JWT_SECRET")
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Forwards the process's log lines (on stdout) and anything on stderr to a
/// channel, from threads that read to the end whether anyone still listens
/// or not, so the process never blocks on a full pipe.
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let outputs: [Box<dyn std::io::Read + Send>; 2] = [Box::new(stdout), Box::new(stderr)];
    for output in outputs {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(output).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    rx
}

impl Server {
    /// Starts the binary and waits for it to listen; returns it with the log
    /// lines read until then.
    fn start(data_dir: &Path) -> (Self, Vec<String>) {
        let port = free_port();
        let mut child = command(data_dir, port).spawn().expect("spawn ticketflow");
        let log = lines(&mut child);
        let mut seen = Vec::new();
        let deadline = std::time::Instant::now() + STARTUP;
        while !seen
            .iter()
            .any(|l: &String| l.contains("ticketflow listening"))
        {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match log.recv_timeout(left) {
                Ok(line) => seen.push(line),
                Err(_) => panic!("the server did not start:\n{}", seen.join("\n")),
            }
        }
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        (server, seen)
    }

    /// SIGKILL: no shutdown, no flush; what was acknowledged must survive.
    fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("reap");
    }

    fn ws(&self, path: &str) -> String {
        format!("{}{path}", self.base.replacen("http://", "ws://", 1))
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.send(method, path, token, body, None).await.0
    }

    /// Sends a request (with `X-Min-Position` if given); returns the status,
    /// the body and the `X-Position` of the answer.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        min_position: Option<i64>,
    ) -> ((StatusCode, Value), Option<i64>) {
        let mut request = reqwest::Client::new().request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(position) = min_position {
            request = request.header("x-min-position", position);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let position = response
            .headers()
            .get("x-position")
            .and_then(|p| p.to_str().ok()?.parse().ok());
        let body = response.json().await.unwrap_or(Value::Null);
        ((status, body), position)
    }

    /// POSTs; returns the answer and its `X-Position`.
    async fn post_at(&self, path: &str, token: Option<&str>, body: Value) -> (Value, Option<i64>) {
        let ((status, reply), position) = self
            .send(reqwest::Method::POST, path, token, Some(body), None)
            .await;
        assert!(status.is_success(), "POST {path}: {status} {reply}");
        (reply, position)
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Value {
        self.post_at(path, token, body).await.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_command_runs_embedded_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, log) = Server::start(dir.path());
    let log = log.join("\n");
    assert!(log.contains("embedded"), "{log}");
    assert!(log.contains(&dir.path().display().to_string()), "{log}");
    assert!(
        log.contains("DATABASE_URL") && log.contains("NATS_URL"),
        "{log}"
    );
    assert!(dir.path().join("events.db").exists());
    assert!(dir.path().join("reads.db").exists());
    assert!(dir.path().join("jwt-secret").exists());
    let (status, _) = server
        .call(reqwest::Method::GET, "/api/me", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_the_same_data_directory_refuses_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, _) = Server::start(dir.path());
    let second = command(dir.path(), free_port()).output().expect("run");
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    let stderr = format!("{stderr}{}", String::from_utf8_lossy(&second.stdout));
    assert!(
        stderr.contains("in use by another ticketflow process"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("pid {}", first.child.id())),
        "{stderr}"
    );
    // The first one is untouched.
    let (status, _) = first
        .call(reqwest::Method::GET, "/api/me", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_restarts_with_its_data_tokens_and_replay() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, _) = Server::start(dir.path());
    let credentials = json!({ "username": "alice", "password": "password123" });
    server
        .post("/api/auth/register", None, credentials.clone())
        .await;
    let login = server.post("/api/auth/login", None, credentials).await;
    let token = login["access_token"].as_str().expect("token").to_string();
    let project = server
        .post(
            "/api/projects",
            Some(&token),
            json!({ "key": "EMB", "name": "Embedded" }),
        )
        .await;
    let project_id = project["id"].as_str().expect("project id").to_string();
    let channel = format!("/ws/projects/{project_id}/tickets/?token={token}");
    let mut socket = connect(&server.ws(&channel)).await;
    assert_eq!(
        next_json(&mut socket).await["type"],
        "connection_established"
    );
    let tickets = format!("/api/projects/{project_id}/tickets");
    let (mut live, mut written) = (Vec::new(), None);
    for title in ["one", "two", "three"] {
        let (_, position) = server
            .post_at(&tickets, Some(&token), json!({ "title": title }))
            .await;
        written = position;
        live.push(next_json(&mut socket).await);
    }
    assert_eq!(
        live.iter().map(|m| m["seq"].as_i64()).collect::<Vec<_>>(),
        [Some(1), Some(2), Some(3)]
    );
    drop(socket);
    server.kill();

    let (server, _) = Server::start(dir.path());
    // The token signed before the restart still holds: the secret was kept.
    // Read-your-writes across the restart: the read models may still be
    // catching up on what the log holds.
    let ((status, listed), _) = server
        .send(reqwest::Method::GET, &tickets, Some(&token), None, written)
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let titles: Vec<_> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|t| t["title"].clone())
        .collect();
    assert_eq!(titles, [json!("one"), json!("two"), json!("three")]);
    // A client that saw seq 1 gets exactly 2 and 3, the same bytes as live.
    let mut socket = connect(&server.ws(&format!("{channel}&since=1"))).await;
    assert_eq!(
        next_json(&mut socket).await["type"],
        "connection_established"
    );
    assert_eq!(next_json(&mut socket).await, live[1]);
    assert_eq!(next_json(&mut socket).await, live[2]);
    assert_eq!(
        next_json(&mut socket).await,
        json!({ "type": "replay_complete", "seq": 3 })
    );
    // And the stream goes on where it stopped.
    server
        .post(&tickets, Some(&token), json!({ "title": "four" }))
        .await;
    let fourth = next_json(&mut socket).await;
    assert_eq!(
        (fourth["seq"].as_i64(), fourth["data"]["title"].as_str()),
        (Some(4), Some("four"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projections_status_reads_the_data_directory_of_a_running_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, _) = Server::start(dir.path());
    let credentials = json!({ "username": "alice", "password": "password123" });
    server.post("/api/auth/register", None, credentials).await;
    let status = projections(dir.path(), &["status"]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let table = String::from_utf8_lossy(&status.stdout);
    for name in [
        "log head",
        "tickets",
        "comments",
        "notifications",
        "ticket_channel",
    ] {
        assert!(table.contains(name), "status lacks {name}:\n{table}");
    }
    // A rebuild needs the directory to itself.
    let refused = projections(dir.path(), &["rebuild", "--all"]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("in use by another ticketflow process"),
        "{said}"
    );
    drop(server);
}

/// `ticketflow projections <args> --data-dir <dir>`, run to completion.
fn projections(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ticketflow"))
        .arg("projections")
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run ticketflow projections")
}

/// What a rebuild must give back: the read side as bob sees it (the
/// ticket, its comments, his notifications with their read flags) and the
/// ticket channel's whole history.
async fn read_side(server: &Server, token: &str, ticket: &str, channel: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    for path in [
        format!("/api/tickets/{ticket}"),
        format!("/api/tickets/{ticket}/comments"),
        "/api/notifications".to_string(),
    ] {
        let (status, body) = server
            .call(reqwest::Method::GET, &path, Some(token), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        seen.push(body);
    }
    let mut socket = connect(&server.ws(&format!("{channel}&since=0"))).await;
    loop {
        let message = next_json(&mut socket).await;
        if message["type"] == "replay_complete" {
            return seen;
        }
        seen.push(message);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_of_a_stopped_servers_read_models_gives_them_back_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, _) = Server::start(dir.path());
    let mut tokens = Vec::new();
    for name in ["alice", "bob"] {
        let credentials = json!({ "username": name, "password": "password123" });
        let user = server
            .post("/api/auth/register", None, credentials.clone())
            .await;
        let login = server.post("/api/auth/login", None, credentials).await;
        let token = login["access_token"].as_str().expect("token").to_string();
        tokens.push((user["id"].as_str().expect("id").to_string(), token));
    }
    let [(_, alice), (bob_id, bob)] = [tokens[0].clone(), tokens[1].clone()];
    let project = server
        .post(
            "/api/projects",
            Some(&alice),
            json!({ "key": "RB", "name": "Rebuild" }),
        )
        .await;
    let pid = project["id"].as_str().expect("id").to_string();
    server
        .post(
            &format!("/api/projects/{pid}/members"),
            Some(&alice),
            json!({ "username": "bob" }),
        )
        .await;
    let ticket = server
        .post(
            &format!("/api/projects/{pid}/tickets"),
            Some(&alice),
            json!({ "title": "t", "assignee_id": bob_id }),
        )
        .await;
    let tid = ticket["id"].as_str().expect("id").to_string();
    let (_, written) = server
        .post_at(
            &format!("/api/tickets/{tid}/comments"),
            Some(&alice),
            json!({ "body": "@bob look" }),
        )
        .await;
    // Read-your-writes, then a read mark, which is not the projection's.
    let ((_, notes), _) = server
        .send(
            reqwest::Method::GET,
            "/api/notifications",
            Some(&bob),
            None,
            written,
        )
        .await;
    let first = notes["items"][0]["id"]
        .as_str()
        .expect("a notification")
        .to_string();
    let ((status, _), _) = server
        .send(
            reqwest::Method::POST,
            &format!("/api/notifications/{first}/read"),
            Some(&bob),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let channel = format!("/ws/projects/{pid}/tickets/?token={bob}");
    let before = read_side(&server, &bob, &tid, &channel).await;
    server.kill();

    let rebuilt = projections(dir.path(), &["rebuild", "--all"]);
    let said = String::from_utf8_lossy(&rebuilt.stderr);
    assert!(rebuilt.status.success(), "{said}");
    for name in ["tickets", "comments", "notifications", "ticket_channel"] {
        assert!(
            said.contains(&format!("{name}: rebuilt at position")),
            "{said}"
        );
    }
    let (server, _) = Server::start(dir.path());
    assert_eq!(read_side(&server, &bob, &tid, &channel).await, before);
}
