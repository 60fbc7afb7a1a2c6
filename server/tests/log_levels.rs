//! What a client can make the server log: every refusal a client causes
//! (bad input, auth failures, not found, conflicts, limits and rate limits,
//! a position far ahead, a bad socket) logs below WARN. WARN and ERROR are for what needs
//! an operator, so a client must not be able to write them at will.
//!
//! The server runs in this test's process; the test installs the process's
//! subscriber, so this file holds this one test.
//!
//! Run: `cargo test -p ticketflow --test log_levels` (PostgreSQL and NATS
//! up, or `TICKETFLOW_TEST_MODE=embedded`).

use std::io::Write;
use std::sync::{Arc, Mutex};

use futures::SinkExt;
use reqwest::Method;
use serde_json::json;
use ticketflow::RateLimits;
use ticketflow_testkit::ws::{close_code, connect, next_json, refused, send_json};
use ticketflow_testkit::{assert_error, setup_on, ticket_path, Config, TestServer};
use tokio_tungstenite::tungstenite::Message;
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The log lines written so far, one per event.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    /// Every event at WARN and above from anywhere, and the API's DEBUG
    /// ones, which show that the server's events reach this log at all.
    fn install() -> Self {
        let log = Log::default();
        let writer = log.clone();
        let format = tracing_subscriber::fmt::layer()
            .without_time()
            .with_ansi(false)
            .with_writer(move || writer.clone());
        let filter = Targets::new()
            .with_default(Level::WARN)
            .with_target("ticketflow_api", Level::DEBUG);
        tracing_subscriber::registry()
            .with(format)
            .with(filter)
            .init();
        log
    }

    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().expect("log lock").clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn client_caused_refusals_log_below_warn() {
    let log = Log::install();
    // Rate limits only the steps below reach.
    let limits = RateLimits {
        logins_per_username: "1/h:3".parse().expect("a limit"),
        socket_messages: "1/h:1".parse().expect("a limit"),
        ..RateLimits::default()
    };
    let config = Config {
        limits,
        ..Config::default()
    };
    let s = setup_on(TestServer::start_with(config).await).await;
    let bob = s.server.user("bob").await;
    let id = s.ticket("t").await;
    let token = Some(s.alice.token.as_str());
    let server = &s.server;

    // Bad input: body, query, headers, limits.
    let tickets = s.tickets_path();
    let reply = server
        .send_raw(Method::POST, &tickets, token, b"{".to_vec(), &[])
        .await;
    assert_error(&reply, 400, "malformed_json", None);
    let reply = server
        .call(
            Method::POST,
            &tickets,
            token,
            Some(json!({ "title": 5 })),
            &[],
        )
        .await;
    assert_error(&reply, 422, "invalid_field", Some("title"));
    let reply = s.get(&format!("{tickets}?limit=0")).await;
    assert_error(&reply, 422, "invalid_field", Some("limit"));
    let header = [("x-min-position", "-1")];
    let reply = server
        .call(Method::GET, &tickets, token, None, &header)
        .await;
    assert_error(&reply, 400, "invalid_header", None);
    let too_big = vec![b' '; (1 << 20) + 1];
    let reply = server
        .send_raw(Method::POST, &tickets, token, too_big, &[])
        .await;
    assert_error(&reply, 413, "payload_too_large", None);
    let pad = "p".repeat(100 * 1024);
    let reply = server
        .call(Method::GET, &tickets, token, None, &[("x-pad", &pad)])
        .await;
    assert_error(&reply, 431, "headers_too_large", None);

    // A position nobody wrote yet: a 503 after the wait, which is the
    // client's doing, not the read models'.
    let written = s.try_ticket(json!({ "title": "u" })).await.position();
    let far = (written + 1_000_000).to_string();
    let header = [("x-min-position", far.as_str())];
    let reply = server
        .call(Method::GET, &tickets, token, None, &header)
        .await;
    assert_error(&reply, 503, "projection_lagging", None);

    // Authentication and authorisation.
    let reply = server
        .call(Method::GET, "/api/projects", Some("nonsense"), None, &[])
        .await;
    assert_error(&reply, 401, "unauthenticated", None);
    let reply = server.call(Method::GET, "/api/me", None, None, &[]).await;
    assert_error(&reply, 401, "unauthenticated", None);
    assert_error(
        &server.login("alice", "wrong-password").await,
        401,
        "unauthenticated",
        None,
    );
    assert_error(
        &server.login("nobody", "password123").await,
        401,
        "unauthenticated",
        None,
    );
    // A session of its own: reusing a refresh token ends its session, and
    // alice's first one still has requests to make below.
    let second = server.login("alice", "password123").await;
    assert_eq!(second.status, 200, "{:?}", second.body);
    let refresh = json!({ "refresh_token": second.body["refresh_token"] });
    let first = server
        .call(
            Method::POST,
            "/api/auth/refresh",
            None,
            Some(refresh.clone()),
            &[],
        )
        .await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let reused = server
        .call(Method::POST, "/api/auth/refresh", None, Some(refresh), &[])
        .await;
    assert_error(&reused, 401, "unauthenticated", None);
    let reply = s.server.get(&ticket_path(&id), &bob.token).await;
    assert!(reply.status == 403 || reply.status == 404, "{reply:?}");
    for _ in 0..3 {
        assert_eq!(server.login("carol", "password123").await.status, 401);
    }
    let reply = server.login("carol", "password123").await;
    assert_error(&reply, 429, "rate_limited", None);

    // Not found and conflicts.
    let missing = ticket_path(&uuid::Uuid::now_v7().to_string());
    assert_error(&s.get(&missing).await, 404, "not_found", None);
    assert_error(&s.get("/api/nope").await, 404, "not_found", None);
    let reply = server
        .call(Method::PUT, "/api/projects", token, None, &[])
        .await;
    assert_eq!(reply.status, 405);
    let stale = [("if-match", "\"99\"")];
    let patch = Some(json!({ "title": "x" }));
    let reply = server
        .call(Method::PATCH, &ticket_path(&id), token, patch, &stale)
        .await;
    assert_error(&reply, 409, "version_conflict", None);
    let again = json!({ "username": "bob", "password": "password123" });
    let reply = server.register(again).await;
    assert_error(&reply, 409, "username_taken", None);
    let project = json!({ "key": "PROJ", "name": "again" });
    let reply = server
        .call(Method::POST, "/api/projects", token, Some(project), &[])
        .await;
    assert_error(&reply, 409, "project_key_taken", None);
    let keyed = [("idempotency-key", "k1")];
    for title in ["one", "two"] {
        let body = Some(json!({ "title": title }));
        let reply = server
            .call(Method::POST, &tickets, token, body, &keyed)
            .await;
        if title == "two" {
            assert_error(&reply, 422, "idempotency_key_reused", None);
        }
    }

    // Sockets: a bad token, a bad since, a bad message, a binary frame and
    // one too big.
    let notifications = server.ws_url("/ws/notifications");
    assert_eq!(
        refused(&format!("{notifications}?token=nonsense")).await,
        401
    );
    assert_eq!(refused(&notifications).await, 401);
    let since = format!("{notifications}?token={}&since=-1", s.alice.token);
    assert_eq!(refused(&since).await, 400);
    let channel = format!(
        "{}?token={}",
        server.ws_url(&format!("/ws/projects/{}/tickets", s.project_id)),
        s.alice.token
    );
    let mut socket = connect(&channel).await;
    send_json(&mut socket, json!({ "type": "nonsense" })).await;
    // Whatever the channel sends first, the answer comes (or next_json's
    // deadline fails the test).
    while next_json(&mut socket).await["code"] != "bad_message" {}
    send_json(&mut socket, json!({ "type": "ping", "timestamp": 1 })).await;
    assert_eq!(next_json(&mut socket).await["code"], "rate_limited");
    socket
        .send(Message::binary(vec![1, 2, 3]))
        .await
        .expect("send binary");
    assert_eq!(close_code(&mut socket).await, 1003);
    let mut socket = connect(&channel).await;
    let huge = "x".repeat(70_000);
    socket.send(Message::text(huge)).await.expect("send big");
    assert_eq!(close_code(&mut socket).await, 1009);

    let lines = log.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("X-Min-Position ahead of the log")),
        "the server's events do not reach this log:\n{}",
        lines.join("\n")
    );
    let loud: Vec<&String> = lines
        .iter()
        .filter(|l| {
            let l = l.trim_start();
            l.starts_with("WARN") || l.starts_with("ERROR")
        })
        .collect();
    assert!(loud.is_empty(), "client-caused WARN/ERROR lines: {loud:#?}");
}
