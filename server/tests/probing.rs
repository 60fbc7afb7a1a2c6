//! What probing the running server as an outsider found, each fixed: socket
//! protocol violations closed with 1002, query and header parameters read
//! one strict way, body errors in the client's terms, and the error body on
//! every error status. Real HTTP, and a raw TCP client for hand-made frames.
//!
//! Run: `cargo test -p ticketflow --test probing` (PostgreSQL and NATS up,
//! or `TICKETFLOW_TEST_MODE=embedded`).

use reqwest::Method;
use serde_json::{json, Value};
use ticketflow_testkit::{assert_error, assert_error_in, setup, ticket_path, Reply, Setup};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// A socket upgraded by hand, so the test can write frames no client
/// library would.
async fn raw_socket(s: &Setup) -> TcpStream {
    let addr = s.server.base.trim_start_matches("http://").to_string();
    let mut tcp = TcpStream::connect(&addr).await.expect("connect");
    let request = format!(
        "GET /ws/notifications?token={} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n",
        s.alice.token
    );
    tcp.write_all(request.as_bytes())
        .await
        .expect("send upgrade");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tcp.read_exact(&mut byte).await.expect("upgrade response");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tcp
}

/// A client frame: FIN, `first`'s other bits and opcode, masked `payload`.
fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![first];
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend((n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend((n as u64).to_be_bytes());
        }
    }
    frame.extend(mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// The server's next frame (servers do not mask): its opcode and payload.
async fn next_frame(tcp: &mut TcpStream) -> (u8, Vec<u8>) {
    let read = async {
        let mut head = [0u8; 2];
        tcp.read_exact(&mut head).await.expect("a frame");
        let len = match head[1] & 0x7f {
            126 => u64::from(tcp.read_u16().await.expect("length")),
            127 => tcp.read_u64().await.expect("length"),
            n => u64::from(n),
        };
        let mut payload = vec![0u8; len as usize];
        tcp.read_exact(&mut payload).await.expect("payload");
        (head[0] & 0x0f, payload)
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("a frame in time")
}

/// Reads the server's frames until its Close; returns the code.
async fn close_code_of(tcp: &mut TcpStream) -> u16 {
    loop {
        let (opcode, payload) = next_frame(tcp).await;
        if opcode == 0x8 {
            assert!(payload.len() >= 2, "a Close without a code");
            return u16::from_be_bytes([payload[0], payload[1]]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn websocket_protocol_violations_close_with_1002() {
    let s = setup().await;
    let unmasked_text = vec![0x81, 2, b'h', b'i'];
    let cases: [(&str, Vec<u8>, u16); 8] = [
        ("continuation without a start", masked(0x80, b"x"), 1002),
        ("reserved data opcode", masked(0x83, b"x"), 1002),
        ("reserved control opcode", masked(0x8b, b""), 1002),
        ("unmasked client frame", unmasked_text, 1002),
        ("reserved bit set", masked(0x81 | 0x40, b"{}"), 1002),
        ("fragmented control frame", masked(0x09, b""), 1002),
        ("text that is not UTF-8", masked(0x81, &[0xff, 0xfe]), 1007),
        ("message over 64 KiB", masked(0x81, &[b'a'; 65_537]), 1009),
    ];
    for (what, frame, code) in cases {
        let mut tcp = raw_socket(&s).await;
        // The server may answer before reading it all.
        let _ = tcp.write_all(&frame).await;
        assert_eq!(close_code_of(&mut tcp).await, code, "{what}");
    }
    // A socket that keeps the protocol is served as before.
    let mut tcp = raw_socket(&s).await;
    let ping = br#"{"type":"ping","timestamp":7}"#;
    tcp.write_all(&masked(0x81, ping)).await.expect("send ping");
    loop {
        let (opcode, payload) = next_frame(&mut tcp).await;
        assert_ne!(opcode, 0x8, "closed: {payload:?}");
        let text: Value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
        if text["type"] == "pong" {
            assert_eq!(text["timestamp"], 7);
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn query_parameters_are_strict_and_alike() {
    let s = setup().await;
    let id = s.ticket("t").await;
    let tickets = s.tickets_path();
    let events = format!("/api/projects/{}/events", s.project_id);
    let cases = [
        (format!("{events}?follow=maybe"), "follow"),
        (format!("{events}?follow=1"), "follow"),
        (format!("{events}?follow="), "follow"),
        (
            "/api/notifications?unread_only=maybe".to_string(),
            "unread_only",
        ),
        (
            "/api/notifications?unread_only=0".to_string(),
            "unread_only",
        ),
        ("/api/notifications?unread_only=".to_string(), "unread_only"),
        (format!("{tickets}?limit="), "limit"),
        (format!("{tickets}?limit=+5"), "limit"),
        (format!("{tickets}?limit=%205"), "limit"),
        (format!("{tickets}?limit=0"), "limit"),
        (format!("{tickets}?after="), "after"),
        (format!("{tickets}?after=+1"), "after"),
        ("/api/projects?after=".to_string(), "after"),
        (format!("{tickets}?status_id=-1"), "status_id"),
        (format!("{tickets}?status_id="), "status_id"),
        (format!("{tickets}?assignee_id="), "assignee_id"),
        (format!("{events}?after=-1"), "after"),
        (format!("/api/tickets/{id}?as_of=+1"), "as_of"),
        (
            format!("/api/tickets/{id}/history?limit=1&limit=2"),
            "limit",
        ),
    ];
    for (path, field) in cases {
        let reply = s.get(&path).await;
        assert_error_in(&path, &reply, 422, "invalid_field", Some(field));
        let message = reply.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{path}: {message}");
    }
    // The values the rules allow still work.
    for path in [
        format!("{events}?follow=false"),
        "/api/notifications?unread_only=true".to_string(),
        "/api/notifications?unread_only=false".to_string(),
        format!("{tickets}?limit=200&after=0&status_id=1"),
        format!("/api/tickets/{id}?as_of=1"),
    ] {
        let reply = s.get(&path).await;
        assert_eq!(reply.status, 200, "{path}: {:?}", reply.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn header_parameters_are_strict_and_alike() {
    let s = setup().await;
    let id = s.ticket("t").await;
    let token = Some(s.alice.token.as_str());
    for bad in ["-1", "", "+1", "1e3", "abc", "0x10", "99999999999999999999"] {
        let header = [("x-min-position", bad)];
        let reply = s
            .server
            .call(Method::GET, "/api/projects", token, None, &header)
            .await;
        let case = format!("X-Min-Position {bad:?}");
        assert_error_in(&case, &reply, 400, "invalid_header", Some("X-Min-Position"));
    }
    let header = [("x-min-position", "0")];
    let reply = s
        .server
        .call(Method::GET, "/api/projects", token, None, &header)
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let patch = Some(json!({ "title": "x" }));
    let ticket = ticket_path(&id);
    for bad in ["1", "\"-1\"", "\"\"", "\"+1\"", "\"1", "*", "W/1"] {
        let header = [("if-match", bad)];
        let reply = s
            .server
            .call(Method::PATCH, &ticket, token, patch.clone(), &header)
            .await;
        let case = format!("If-Match {bad:?}");
        assert_error_in(&case, &reply, 400, "invalid_header", Some("If-Match"));
    }
    assert_eq!(s.server.history(&s.alice, &id).await.len(), 1);
    for good in ["\"1\"", "W/\"1\""] {
        let header = [("if-match", good)];
        let reply = s
            .server
            .call(Method::PATCH, &ticket, token, patch.clone(), &header)
            .await;
        assert!(
            reply.status == 200 || reply.status == 409,
            "{good}: {reply:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bad_since_is_a_400_naming_it_before_any_upgrade() {
    let s = setup().await;
    let token = &s.alice.token;
    let paths = [
        format!("/ws/notifications?token={token}&since=-1"),
        format!("/ws/notifications?token={token}&since="),
        format!("/ws/notifications?token={token}&since=+1"),
        format!("/ws/notifications?token={token}&since=1&since=2"),
        format!(
            "/ws/projects/{}/tickets?token={token}&since=1.5",
            s.project_id
        ),
    ];
    for path in paths {
        // A plain GET: the handshake's checks come before the upgrade's.
        let reply = s.server.call(Method::GET, &path, None, None, &[]).await;
        assert_error_in(&path, &reply, 400, "invalid_field", Some("since"));
    }
    let good = format!("/ws/notifications?token={token}&since=0");
    let reply = s.server.call(Method::GET, &good, None, None, &[]).await;
    assert_error(&reply, 400, "not_a_websocket", None);
}

/// Words that belong to the server's Rust types, not to the client's JSON.
const RUST_WORDS: [&str; 15] = [
    "struct", "enum", "variant", "Uuid", "i64", "u64", "usize", "::", "Option", "Vec", "String",
    "sequence", "a map", "borrowed", "elements",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn body_errors_speak_the_clients_terms() {
    let s = setup().await;
    let id = s.ticket("t").await;
    let token = Some(s.alice.token.as_str());
    let tickets = s.tickets_path();
    let members = format!("/api/projects/{}/members", s.project_id);
    let comments = format!("/api/tickets/{id}/comments");
    let ticket = ticket_path(&id);
    let (post, patch) = (Method::POST, Method::PATCH);
    let cases: Vec<(Method, &str, Value, &str)> = vec![
        (post.clone(), &tickets, json!(["t"]), "body"),
        (post.clone(), &tickets, json!([1, 2, 3]), "body"),
        (post.clone(), &tickets, json!("title"), "body"),
        (post.clone(), &tickets, json!(null), "body"),
        (post.clone(), &tickets, json!(7), "body"),
        (post.clone(), &tickets, json!({ "title": 5 }), "title"),
        (
            post.clone(),
            &tickets,
            json!({ "title": "t", "priority": "huge" }),
            "priority",
        ),
        (
            post.clone(),
            &tickets,
            json!({ "title": "t", "priority": 5 }),
            "priority",
        ),
        (
            post.clone(),
            &tickets,
            json!({ "title": "t", "labels": ["a", 1] }),
            "labels",
        ),
        (
            post.clone(),
            &tickets,
            json!({ "title": "t", "labels": {} }),
            "labels",
        ),
        (
            post.clone(),
            &tickets,
            json!({ "title": "t", "assignee_id": "nope" }),
            "assignee_id",
        ),
        (
            post.clone(),
            &tickets,
            json!({ "title": "t", "assignee_id": [] }),
            "assignee_id",
        ),
        (
            post.clone(),
            &tickets,
            json!({ "title": "t", "status_id": "2" }),
            "status_id",
        ),
        (
            post.clone(),
            &tickets,
            json!({ "title": "t", "status_id": 1e30 }),
            "status_id",
        ),
        (
            post.clone(),
            &tickets,
            json!({ "title": "t", "severity": 1 }),
            "severity",
        ),
        (
            patch.clone(),
            &ticket,
            json!({ "status_id": 1.5 }),
            "status_id",
        ),
        (patch.clone(), &ticket, json!([{ "title": "x" }]), "body"),
        (
            post.clone(),
            "/api/auth/register",
            json!({ "username": "zed", "password": ["x"] }),
            "password",
        ),
        (post.clone(), "/api/auth/login", json!([]), "body"),
        (
            post.clone(),
            "/api/auth/refresh",
            json!({ "refresh_token": null }),
            "refresh_token",
        ),
        (post.clone(), "/api/projects", json!({}), "key"),
        (
            post.clone(),
            "/api/projects",
            json!({ "key": "K", "name": true }),
            "name",
        ),
        (
            post.clone(),
            &members,
            json!({ "username": {} }),
            "username",
        ),
        (
            post.clone(),
            &comments,
            json!({ "body": "b", "extra": 1 }),
            "extra",
        ),
    ];
    for (method, path, body, field) in cases {
        let case = format!("{method} {path} {body}");
        let reply = s.server.call(method, path, token, Some(body), &[]).await;
        assert_error_in(&case, &reply, 422, "invalid_field", Some(field));
        let message = reply.body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(field),
            "{case}: does not name {field}: {message}"
        );
        let doubled = format!("{field}.{field}");
        assert!(!message.contains(&doubled), "{case}: {message}");
        for word in RUST_WORDS {
            assert!(!message.contains(word), "{case}: says {word:?}: {message}");
        }
    }
    assert_eq!(s.server.history(&s.alice, &id).await.len(), 1);
}

/// A request over a raw socket with `extra` header lines; the status and
/// the body.
async fn raw_request(s: &Setup, method: &str, path: &str, extra: &str) -> (u16, Value) {
    let addr = s.server.base.trim_start_matches("http://").to_string();
    let mut tcp = TcpStream::connect(&addr).await.expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\n{extra}Connection: close\r\n\r\n"
    );
    let _ = tcp.write_all(request.as_bytes()).await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(WAIT, tcp.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let body = serde_json::from_str(body.trim()).unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_error_status_carries_the_error_body() {
    let s = setup().await;
    let token = format!("Authorization: Bearer {}\r\n", s.alice.token);
    let big = format!("X-Pad: {}\r\n", "p".repeat(100 * 1024));
    // Over hyper's default buffer (about 400 KiB), under the server's ceiling.
    let huge = format!("X-Pad: {}\r\n", "p".repeat(600 * 1024));
    let split: String = (0..40)
        .map(|i| format!("X-Pad-{i}: {}\r\n", "p".repeat(2000)))
        .collect();
    let many: String = (0..101).map(|i| format!("X-N-{i}: n\r\n")).collect();
    let none = String::new();
    let too_large = (431, "headers_too_large");
    let not_allowed = (405, "method_not_allowed");
    let not_found = (404, "not_found");
    let cases = [
        ("GET", "/api/projects", &big, too_large),
        ("GET", "/nope", &big, too_large),
        ("GET", "/api/projects", &huge, too_large),
        ("GET", "/api/projects", &split, too_large),
        ("GET", "/api/projects", &many, too_large),
        ("PUT", "/api/projects", &token, not_allowed),
        ("DELETE", "/api/auth/login", &none, not_allowed),
        ("POST", "/ws/notifications", &none, not_allowed),
        ("GET", "/api/nope", &token, not_found),
        ("POST", "/nope", &none, not_found),
        ("GET", "/ws/projects/%FF/tickets", &token, not_found),
    ];
    for (method, path, extra, (status, code)) in cases {
        let (got, body) = raw_request(&s, method, path, extra).await;
        assert_eq!(got, status, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], code, "{method} {path}: {body}");
        assert!(
            body["error"]["message"].is_string(),
            "{method} {path}: {body}"
        );
    }
    let too_big = vec![b' '; (1 << 20) + 1];
    let reply = s
        .server
        .send_raw(
            Method::POST,
            "/api/projects",
            Some(&s.alice.token),
            too_big,
            &[],
        )
        .await;
    assert_error(&reply, 413, "payload_too_large", None);
    // Just under the limit is served.
    let header = [("x-pad", "p".repeat(60 * 1024))];
    let header: Vec<(&str, &str)> = header.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let reply: Reply = s
        .server
        .call(
            Method::GET,
            "/api/projects",
            Some(&s.alice.token),
            None,
            &header,
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}
