//! An instance started while NATS is unreachable: the binary serves
//! commands and reads at once (they need only PostgreSQL), refuses socket
//! handshakes with 503 `dependency_unavailable`, and once NATS comes up its
//! relay, projections and gateway connect by themselves and sockets get
//! live events. PostgreSQL mode only.
//!
//! Run: `cargo test -p ticketflow --test nats_late`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use ticketflow_testkit::ws::{next_json, WAIT};
use ticketflow_testkit::{embedded_mode, NatsServer, TestDb};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Error as WsError;

/// How long the binary may take to answer HTTP (a debug build, migrations).
const SERVING_WITHIN: Duration = Duration::from_secs(15);

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(db: &TestDb, nats: &NatsServer) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let prefix = format!("tf_{}", uuid::Uuid::new_v4().simple());
        let child = Command::new(env!("CARGO_BIN_EXE_ticketflow"))
            .arg("serve")
            .env("DATABASE_URL", &db.url)
            .env("NATS_URL", nats.url())
            .env("NATS_PREFIX", prefix)
            .env("JWT_SECRET", "a secret for this test only")
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ticketflow");
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let response = reqwest::Client::new()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Registers `username` once the server answers; returns a token.
    async fn user(&self, username: &str) -> String {
        let deadline = Instant::now() + SERVING_WITHIN;
        let body = json!({ "username": username, "password": "a long password", "display_name": username });
        let client = reqwest::Client::new();
        loop {
            let sent = client
                .post(format!("{}/api/auth/register", self.base))
                .json(&body)
                .send()
                .await;
            if let Ok(response) = sent {
                assert_eq!(response.status(), StatusCode::CREATED);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no HTTP within {SERVING_WITHIN:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let login = json!({ "username": username, "password": "a long password" });
        let (status, body) = self.call(Method::POST, "/api/auth/login", "", login).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["access_token"].as_str().expect("a token").to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commands_are_served_before_nats_comes_up_and_sockets_go_live_after() {
    if embedded_mode() {
        eprintln!("embedded mode has no NATS to wait for: skipped");
        return;
    }
    let (db, mut nats) = (TestDb::create().await, NatsServer::reserved());
    let server = Server::start(&db, &nats);
    let started = Instant::now();
    let token = server.user("alice").await;
    assert!(started.elapsed() < SERVING_WITHIN);

    // Commands and reads without NATS.
    let project = json!({ "key": "LATE", "name": "Late" });
    let (status, project) = server
        .call(Method::POST, "/api/projects", &token, project)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{project}");
    let tickets = format!("/api/projects/{}/tickets", project["id"].as_str().unwrap());
    let early = json!({ "title": "before NATS" });
    let (status, body) = server.call(Method::POST, &tickets, &token, early).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = server
        .call(Method::GET, "/api/projects", &token, Value::Null)
        .await;
    assert_eq!(
        (status, body["items"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(1))
    );
    let socket_url = format!(
        "{}/ws/projects/{}/tickets/?token={token}&since=0",
        server.base.replacen("http://", "ws://", 1),
        project["id"].as_str().unwrap()
    );
    match connect_async(&socket_url).await {
        Err(WsError::Http(refused)) => assert_eq!(refused.status(), 503),
        other => panic!("expected a 503 before NATS, got {:?}", other.map(|_| ())),
    }

    nats.resume().await;
    let deadline = Instant::now() + WAIT;
    let mut socket = loop {
        match connect_async(&socket_url).await {
            Ok((socket, _)) => break socket,
            Err(WsError::Http(refused)) if refused.status() == 503 => {
                assert!(Instant::now() < deadline, "the gateway never started");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("handshake: {e}"),
        }
    };
    assert_eq!(
        next_json(&mut socket).await["type"],
        "connection_established"
    );
    let (status, body) = server
        .call(Method::POST, &tickets, &token, json!({ "title": "live" }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The ticket made before NATS came (replayed, or live if projected
    // after the handshake) and the one made now, each once, in order.
    let mut created = Vec::new();
    while created.len() < 2 {
        let message = next_json(&mut socket).await;
        match message["type"].as_str() {
            Some("replay_complete") => {}
            Some("ticket_update") if message["action"] == "created" => {
                created.push(message["seq"].as_i64())
            }
            _ => panic!("unexpected {message}"),
        }
    }
    assert_eq!(created, [Some(1), Some(2)]);
    drop(server);
    nats.kill();
}
