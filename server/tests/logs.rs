//! Logs an operator can follow: every response carries `X-Request-Id` (the
//! client's when it sent a short plain token, else a new UUID v7), and with
//! `LOG_FORMAT=json` each line is a JSON object whose spans carry the id of
//! the request it belongs to, or a socket's `connection_id`.
//!
//! Run: `cargo test -p ticketflow --test logs` (PostgreSQL and NATS up, or
//! `TICKETFLOW_TEST_MODE=embedded`).

use reqwest::Method;
use serde_json::{json, Value};
use ticketflow_testkit::process::{ProcessData, ServerProcess};
use ticketflow_testkit::ws::next_json;
use ticketflow_testkit::{Reply, TestServer};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

fn request_id(reply: &Reply) -> String {
    reply.header("x-request-id").expect("X-Request-Id")
}

#[track_caller]
fn assert_new_id(reply: &Reply) {
    let id = request_id(reply);
    let parsed = uuid::Uuid::parse_str(&id).unwrap_or_else(|_| panic!("{id} is no UUID"));
    assert_eq!(parsed.get_version_num(), 7, "{id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_response_carries_a_request_id() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let paths = [
        "/api/me",
        "/api/projects",
        "/api/nope",
        "/nope",
        "/ws/notifications/",
    ];
    for path in paths {
        let reply = server.call(Method::GET, path, None, None, &[]).await;
        assert_new_id(&reply);
    }
    let reply = server.get("/api/me", &alice.token).await;
    assert_eq!(reply.status, 200);
    assert_new_id(&reply);
    let next = server.login("alice", "wrong password").await;
    assert_ne!(
        request_id(&reply),
        request_id(&next),
        "each request its own"
    );

    // The client's own, when it is one short plain token.
    for id in ["0190a6c2-7a8e-7cc4-9f3a-3c1c9a0e4b21", "trace.42:retry-1_b"] {
        let headers = [("x-request-id", id)];
        let reply = server
            .call(Method::GET, "/api/me", Some(&alice.token), None, &headers)
            .await;
        assert_eq!(request_id(&reply), id);
    }
    let long = "a".repeat(41);
    for unfit in [
        "",
        "two words",
        "quote\"",
        long.as_str(),
        alice.refresh_token.as_str(),
    ] {
        let headers = [("x-request-id", unfit)];
        let reply = server
            .call(Method::GET, "/api/me", Some(&alice.token), None, &headers)
            .await;
        assert_new_id(&reply);
    }
    let twice = [("x-request-id", "one"), ("x-request-id", "two")];
    let reply = server
        .call(Method::GET, "/api/me", Some(&alice.token), None, &twice)
        .await;
    assert_new_id(&reply);
}

/// The lines whose spans (`spans`, outermost first) have `field` = `value`.
fn lines_with<'a>(log: &'a [Value], field: &str, value: &str) -> Vec<&'a Value> {
    log.iter()
        .filter(|line| {
            line["spans"]
                .as_array()
                .is_some_and(|spans| spans.iter().any(|span| span[field] == value))
        })
        .collect()
}

fn messages(lines: &[&Value]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            l["fields"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn json_log_lines_carry_their_requests_id_and_their_sockets_connection_id() {
    let data = ProcessData::new().await;
    let env = [
        ("LOG_FORMAT", "json"),
        (
            "RUST_LOG",
            "info,ticketflow_realtime=debug,tower_http=debug",
        ),
    ];
    let server = ServerProcess::start(env!("CARGO_BIN_EXE_ticketflow"), &data, &env);
    let credentials = json!({ "username": "alice", "password": "password123" });
    let headers = [("x-request-id", "register-alice")];
    let registered = server.send(
        "/api/auth/register",
        None,
        Some(credentials.clone()),
        &headers,
    );
    assert_eq!(registered.await.status, 201);
    let login = server
        .send("/api/auth/login", None, Some(credentials), &[])
        .await;
    let token = login.body["access_token"]
        .as_str()
        .expect("a token")
        .to_string();
    let ws = server.base.replacen("http://", "ws://", 1);
    let mut request = format!("{ws}/ws/notifications/?token={token}")
        .into_client_request()
        .expect("a handshake request");
    let id = HeaderValue::from_static("open-notifications");
    request.headers_mut().insert("x-request-id", id);
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("handshake");
    assert_eq!(
        next_json(&mut socket).await["type"],
        "connection_established"
    );
    socket.close(None).await.expect("close");
    server
        .wait_for_line(|line| line.contains("socket closed"))
        .await;

    let log = server.stop();
    data.remove_stream().await;
    let parsed: Vec<Value> = log
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let registering = lines_with(&parsed, "request_id", "register-alice");
    let said = messages(&registering);
    assert!(
        said.contains(&"started processing request".to_string()),
        "{said:?}"
    );
    let finished = registering
        .iter()
        .find(|l| l["fields"]["message"] == "finished processing request")
        .unwrap_or_else(|| panic!("{registering:#?}"));
    assert_eq!(finished["fields"]["status"], 201, "{finished}");
    assert_eq!(finished["span"]["path"], "/api/auth/register", "{finished}");
    let socket_lines = lines_with(&parsed, "request_id", "open-notifications");
    let socket_opened: Vec<&&Value> = socket_lines
        .iter()
        .filter(|l| l["fields"]["message"] == "socket opened")
        .collect();
    assert_eq!(socket_opened.len(), 1, "{socket_lines:#?}");
    let span = &socket_opened[0]["span"];
    assert_eq!(span["name"], "socket", "{span}");
    let connection = span["connection_id"].as_str().expect("a connection id");
    assert!(uuid::Uuid::parse_str(connection).is_ok(), "{span}");
    let of_connection = lines_with(&parsed, "connection_id", connection);
    assert!(
        messages(&of_connection).contains(&"socket closed".to_string()),
        "{of_connection:#?}"
    );
}
