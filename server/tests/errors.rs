//! The contract's error rules, over real HTTP: the error body, malformed and
//! ill-typed JSON, the 1 MiB body limit, unknown routes, and no 5xx or stack
//! trace for any bad input.
//!
//! Run: `cargo test -p ticketflow --test errors` (PostgreSQL must be up).

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use ticketflow_testkit::{assert_error, assert_error_in, setup, ticket_path, Reply, Setup};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MIB: usize = 1 << 20;

/// `{"title":"t"}` padded with spaces to exactly `len` bytes: valid JSON.
fn padded_ticket(len: usize) -> Vec<u8> {
    let mut body = br#"{"title":"t"}"#.to_vec();
    body.resize(len, b' ');
    body
}

/// A ticket whose description fills the body to exactly `len` bytes.
fn long_description(len: usize) -> Vec<u8> {
    let frame = br#"{"title":"t","description":""}"#.len();
    let description = "d".repeat(len - frame);
    let body = format!(r#"{{"title":"t","description":"{description}"}}"#);
    assert_eq!(body.len(), len);
    body.into_bytes()
}

/// Posts `body` with chunked transfer encoding (no Content-Length) over a
/// raw socket, so only the limit on bytes read can refuse it; returns the
/// status and the JSON body.
async fn post_chunked(base: &str, path: &str, token: &str, body: &[u8]) -> (u16, Value) {
    let addr = base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let mut request = head.into_bytes();
    for chunk in body.chunks(64 * 1024) {
        request.extend(format!("{:x}\r\n", chunk.len()).bytes());
        request.extend(chunk);
        request.extend(b"\r\n");
    }
    request.extend(b"0\r\n\r\n");
    // The server may answer and close before reading everything.
    let _ = socket.write_all(&request).await;
    let mut response = Vec::new();
    let _ = socket.read_to_end(&mut response).await;
    parse_response(&response)
}

/// Status and JSON body of a raw HTTP/1.1 response (chunked or not).
fn parse_response(raw: &[u8]) -> (u16, Value) {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let json_text: String = if chunked {
        body.split("\r\n").skip(1).step_by(2).collect()
    } else {
        body.to_string()
    };
    let value = serde_json::from_str(json_text.trim()).unwrap_or(Value::Null);
    (status, value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unparseable_json_is_400_malformed_json() {
    let s = setup().await;
    let id = s.ticket("t").await;
    let token = Some(s.alice.token.as_str());
    let targets = [
        (Method::POST, "/api/auth/register".to_string(), None),
        (Method::POST, "/api/auth/login".to_string(), None),
        (Method::POST, "/api/auth/refresh".to_string(), None),
        (Method::POST, "/api/projects".to_string(), token),
        (Method::POST, s.tickets_path(), token),
        (Method::PATCH, ticket_path(&id), token),
        (Method::POST, format!("/api/tickets/{id}/comments"), token),
    ];
    let bodies: [&[u8]; 6] = [
        b"{\"title\":",
        b"not json",
        b"",
        b"{\"title\":\"t\",}",
        b"{'title':'t'}",
        b"\xff\xfe{}",
    ];
    for (method, path, token) in &targets {
        for body in bodies {
            let reply = s
                .server
                .send_raw(method.clone(), path, *token, body.to_vec(), &[])
                .await;
            assert_error(&reply, 400, "malformed_json", None);
        }
    }
    assert_eq!(s.server.history(&s.alice, &id).await.len(), 1);
}

/// Where a case sends its body, with the method and whose token (none for
/// the auth routes, alice's for the rest).
#[derive(Debug, Clone, Copy)]
enum To {
    Register,
    Login,
    Refresh,
    Projects,
    Members,
    Tickets,
    /// PATCH the ticket.
    Ticket,
    Comments,
}

impl To {
    async fn send(self, s: &Setup, ticket_id: &str, body: Value) -> Reply {
        let (method, path) = match self {
            To::Register => (Method::POST, "/api/auth/register".to_string()),
            To::Login => (Method::POST, "/api/auth/login".to_string()),
            To::Refresh => (Method::POST, "/api/auth/refresh".to_string()),
            To::Projects => (Method::POST, "/api/projects".to_string()),
            To::Members => (
                Method::POST,
                format!("/api/projects/{}/members", s.project_id),
            ),
            To::Tickets => (Method::POST, s.tickets_path()),
            To::Ticket => (Method::PATCH, ticket_path(ticket_id)),
            To::Comments => (Method::POST, format!("/api/tickets/{ticket_id}/comments")),
        };
        let token = match self {
            To::Register | To::Login | To::Refresh => None,
            _ => Some(s.alice.token.as_str()),
        };
        s.server.call(method, &path, token, Some(body), &[]).await
    }
}

/// Sends each body to its route: each must be a 422 `invalid_field` naming
/// its field. Returns the ticket the cases may touch (alice's "t").
async fn each_is_invalid_field(s: &Setup, cases: Vec<(To, Value, &str)>) -> String {
    let id = s.ticket("t").await;
    for (to, body, field) in cases {
        let case = format!("{to:?} {body}");
        let reply = to.send(s, &id, body).await;
        assert_error_in(&case, &reply, 422, "invalid_field", Some(field));
    }
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn missing_required_field_is_422_naming_it() {
    let s = setup().await;
    let cases = vec![
        (To::Register, json!({ "username": "zed" }), "password"),
        (
            To::Register,
            json!({ "password": "password123" }),
            "username",
        ),
        (To::Login, json!({ "username": "alice" }), "password"),
        (To::Refresh, json!({}), "refresh_token"),
        (To::Projects, json!({ "name": "n" }), "key"),
        (To::Projects, json!({ "key": "NEW" }), "name"),
        (To::Members, json!({}), "username"),
        (To::Tickets, json!({ "priority": "low" }), "title"),
        (To::Comments, json!({}), "body"),
    ];
    each_is_invalid_field(&s, cases).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_json_type_is_422_naming_the_field() {
    let s = setup().await;
    let cases = vec![
        (
            To::Register,
            json!({ "username": 7, "password": "password123" }),
            "username",
        ),
        (
            To::Register,
            json!({ "username": "zed", "password": "password123", "display_name": [] }),
            "display_name",
        ),
        (To::Projects, json!({ "key": ["A"], "name": "n" }), "key"),
        (To::Tickets, json!({ "title": 5 }), "title"),
        (
            To::Tickets,
            json!({ "title": "t", "description": false }),
            "description",
        ),
        (
            To::Tickets,
            json!({ "title": "t", "labels": "ui" }),
            "labels",
        ),
        (
            To::Tickets,
            json!({ "title": "t", "assignee_id": 5 }),
            "assignee_id",
        ),
        (
            To::Tickets,
            json!({ "title": "t", "status_id": 1.5 }),
            "status_id",
        ),
        (To::Ticket, json!({ "status_id": "two" }), "status_id"),
        (To::Ticket, json!({ "title": {} }), "title"),
        (To::Ticket, json!({ "assignee_id": true }), "assignee_id"),
        (To::Comments, json!({ "body": ["x"] }), "body"),
    ];
    let id = each_is_invalid_field(&s, cases).await;
    assert_eq!(s.server.history(&s.alice, &id).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_field_is_422_naming_it() {
    let s = setup().await;
    let cases = vec![
        (
            To::Register,
            json!({ "username": "zed", "password": "password123", "email": "z@x" }),
            "email",
        ),
        (
            To::Login,
            json!({ "username": "alice", "password": "password123", "remember": true }),
            "remember",
        ),
        (
            To::Projects,
            json!({ "key": "NEW", "name": "n", "owner": "bob" }),
            "owner",
        ),
        (
            To::Tickets,
            json!({ "title": "t", "severity": 1 }),
            "severity",
        ),
        (To::Ticket, json!({ "status": 2 }), "status"),
        (To::Comments, json!({ "body": "b", "html": "<b>" }), "html"),
    ];
    let id = each_is_invalid_field(&s, cases).await;
    assert_eq!(s.server.history(&s.alice, &id).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn json_that_is_not_an_object_is_422() {
    let s = setup().await;
    for body in [json!([]), json!("title"), json!(1), json!(null)] {
        let reply = s.try_ticket(body.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {:?}",
            reply.body
        );
        assert_eq!(reply.error_code(), "invalid_field");
        assert!(reply.body["error"]["field"].is_string(), "{:?}", reply.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn body_of_exactly_1_mib_is_accepted() {
    let s = setup().await;
    let token = Some(s.alice.token.as_str());
    let path = s.tickets_path();
    let reply = s
        .server
        .send_raw(Method::POST, &path, token, padded_ticket(MIB), &[])
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    // Read whole, then judged on its content: too long a description.
    let reply = s
        .server
        .send_raw(Method::POST, &path, token, long_description(MIB), &[])
        .await;
    assert_error(&reply, 422, "invalid_field", Some("description"));
    // The same through the Idempotency-Key layer, which buffers the body.
    let reply = s
        .server
        .send_raw(
            Method::POST,
            &path,
            token,
            padded_ticket(MIB),
            &[("idempotency-key", "big")],
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_byte_over_1_mib_is_413_payload_too_large() {
    let s = setup().await;
    let token = Some(s.alice.token.as_str());
    let path = s.tickets_path();
    for body in [padded_ticket(MIB + 1), long_description(MIB + 1)] {
        let reply = s
            .server
            .send_raw(Method::POST, &path, token, body.clone(), &[])
            .await;
        assert_error(&reply, 413, "payload_too_large", None);
        let keyed = [("idempotency-key", "too-big")];
        let reply = s
            .server
            .send_raw(Method::POST, &path, token, body, &keyed)
            .await;
        assert_error(&reply, 413, "payload_too_large", None);
    }
    let register = s
        .server
        .send_raw(
            Method::POST,
            "/api/auth/register",
            None,
            padded_ticket(MIB + 1),
            &[],
        )
        .await;
    assert_error(&register, 413, "payload_too_large", None);
    assert!(s
        .server
        .list_all(&path, &s.alice.token, 50)
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn body_without_a_length_is_limited_to_1_mib_too() {
    let s = setup().await;
    let base = &s.server.base;
    let path = s.tickets_path();
    let token = &s.alice.token;
    let (status, body) = post_chunked(base, &path, token, &padded_ticket(MIB)).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = post_chunked(base, &path, token, &padded_ticket(MIB + 1)).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_route_is_404_json() {
    let s = setup().await;
    let token = Some(s.alice.token.as_str());
    for path in [
        "/",
        "/nope",
        "/api",
        "/api/nope",
        "/api/projects/x/y/z",
        "/api/tickets",
    ] {
        for t in [None, token] {
            let reply = s.server.call(Method::GET, path, t, None, &[]).await;
            assert_error(&reply, 404, "not_found", None);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_method_is_an_error_json_not_a_5xx() {
    let s = setup().await;
    let token = Some(s.alice.token.as_str());
    let reply = s
        .server
        .call(Method::PUT, "/api/projects", token, Some(json!({})), &[])
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(reply.body["error"]["code"].is_string(), "{:?}", reply.body);
}

/// Asserts a refusal a client can act on: a 4xx with the error body and
/// nothing that looks like a crash.
#[track_caller]
fn assert_clean_refusal(reply: &Reply, what: &str) {
    assert!(
        reply.status.is_client_error(),
        "{what}: {} {:?}",
        reply.status,
        reply.body
    );
    assert!(
        reply.body["error"]["code"].is_string(),
        "{what}: {:?}",
        reply.body
    );
    assert!(
        reply.body["error"]["message"].is_string(),
        "{what}: {:?}",
        reply.body
    );
    let text = reply.body.to_string().to_lowercase();
    for trace in [
        "panicked",
        "backtrace",
        "stack backtrace",
        ".rs:",
        "sqlstate",
        "tokio_postgres",
    ] {
        assert!(!text.contains(trace), "{what}: leaks {trace}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_never_yields_a_5xx_or_a_trace() {
    let s = setup().await;
    let id = s.ticket("t").await;
    let token = Some(s.alice.token.as_str());
    let tickets = s.tickets_path();
    let nul = "a\u{0}b";
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let json_cases = [
        (
            Method::POST,
            "/api/auth/register".to_string(),
            None,
            json!({ "username": "nul", "password": "password123", "display_name": nul }),
        ),
        (
            Method::POST,
            "/api/auth/register".to_string(),
            None,
            json!({ "username": "nul2", "password": "pass\u{0}word123" }),
        ),
        (
            Method::POST,
            "/api/auth/login".to_string(),
            None,
            json!({ "username": nul, "password": "password123" }),
        ),
        (
            Method::POST,
            "/api/auth/refresh".to_string(),
            None,
            json!({ "refresh_token": nul }),
        ),
        (
            Method::POST,
            "/api/projects".to_string(),
            token,
            json!({ "key": "NUL", "name": nul }),
        ),
        (
            Method::POST,
            "/api/projects".to_string(),
            token,
            json!({ "key": nul, "name": "n" }),
        ),
        (
            Method::POST,
            format!("/api/projects/{}/members", s.project_id),
            token,
            json!({ "username": nul }),
        ),
        (
            Method::POST,
            tickets.clone(),
            token,
            json!({ "title": nul }),
        ),
        (
            Method::POST,
            tickets.clone(),
            token,
            json!({ "title": "t", "description": nul }),
        ),
        (
            Method::POST,
            tickets.clone(),
            token,
            json!({ "title": "t", "labels": [nul] }),
        ),
        (
            Method::POST,
            tickets.clone(),
            token,
            json!({ "title": "t", "status_id": u64::MAX }),
        ),
        (
            Method::POST,
            tickets.clone(),
            token,
            json!({ "title": "t", "status_id": -1 }),
        ),
        (
            Method::POST,
            tickets.clone(),
            token,
            json!({ "title": "t", nul: 1 }),
        ),
        (
            Method::PATCH,
            ticket_path(&id),
            token,
            json!({ "title": nul }),
        ),
        (
            Method::PATCH,
            ticket_path(&id),
            token,
            json!({ "labels": ["ok", nul] }),
        ),
        (
            Method::POST,
            format!("/api/tickets/{id}/comments"),
            token,
            json!({ "body": nul }),
        ),
    ];
    for (method, path, token, body) in json_cases {
        let what = format!("{method} {path} {body}");
        let reply = s.server.call(method, &path, token, Some(body), &[]).await;
        assert_clean_refusal(&reply, &what);
    }

    let raw_cases: [(&str, Vec<u8>); 4] = [
        ("deep nesting", deep.into_bytes()),
        (
            "huge number",
            br#"{"title":"t","status_id":1e999}"#.to_vec(),
        ),
        ("lone surrogate", br#"{"title":"\ud800"}"#.to_vec()),
        ("duplicate field", br#"{"title":"a","title":"b"}"#.to_vec()),
    ];
    for (what, body) in raw_cases {
        let reply = s
            .server
            .send_raw(Method::POST, &tickets, token, body, &[])
            .await;
        assert_clean_refusal(&reply, what);
    }

    let long_id = "a".repeat(5000);
    let query_cases = [
        format!("{tickets}?limit=99999999999999999999999"),
        format!("{tickets}?limit=1e3"),
        format!("{tickets}?after=-5"),
        format!("{tickets}?limit=%FF"),
        format!("{tickets}?limit=1&limit=2"),
        format!("/api/tickets/{id}?as_of=1&as_of=2"),
        "/api/projects?limit=1&limit=2".to_string(),
        format!("{tickets}?after=abc"),
        format!("{tickets}?status_id=99999999999999999999999"),
        format!("/api/tickets/{id}/history?after=abc"),
        format!("/api/tickets/{id}/comments?after=%00"),
        format!("/api/tickets/{id}?as_of=99999999999999999999999"),
        format!("/api/tickets/{id}?as_of=18446744073709551615"),
        format!("/api/tickets/{id}?as_of=2024-13-45T99:99:99Z"),
        format!("/api/tickets/{id}?as_of=%00"),
        format!("/api/tickets/{long_id}"),
        "/api/tickets/%00".to_string(),
        "/api/projects/%FF%FE".to_string(),
    ];
    for path in query_cases {
        let reply = s.server.call(Method::GET, &path, token, None, &[]).await;
        assert_clean_refusal(&reply, &path);
    }

    let header_cases = [
        (
            Method::GET,
            ticket_path(&id),
            ("x-min-position", "99999999999999999999999"),
        ),
        (Method::GET, ticket_path(&id), ("x-min-position", "-")),
        (Method::PATCH, ticket_path(&id), ("if-match", "\"abc\"")),
        (
            Method::PATCH,
            ticket_path(&id),
            ("if-match", "\"99999999999999999999999\""),
        ),
        (
            Method::PATCH,
            ticket_path(&id),
            ("idempotency-key", &"k".repeat(300)),
        ),
        (Method::PATCH, ticket_path(&id), ("idempotency-key", "")),
    ];
    for (method, path, header) in header_cases {
        let what = format!("{method} {path} {header:?}");
        let body = (method == Method::PATCH).then(|| json!({ "title": "x" }));
        let reply = s.server.call(method, &path, token, body, &[header]).await;
        assert_clean_refusal(&reply, &what);
    }
    // None of it touched the ticket.
    assert_eq!(s.server.history(&s.alice, &id).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_bodies_get_their_413_rather_than_a_reset() {
    // Refused before it is read, a body the client is still sending would end
    // in a reset connection instead of the 413.
    let s = setup().await;
    let token = Some(s.alice.token.as_str());
    let path = s.tickets_path();
    for size in [MIB + 1, 2 * MIB, 4 * MIB].repeat(5) {
        let reply = s
            .server
            .send_raw(Method::POST, &path, token, padded_ticket(size), &[])
            .await;
        assert_error(&reply, 413, "payload_too_large", None);
    }
    // The connections are still good for the next request.
    assert_eq!(s.get(&path).await.status, StatusCode::OK);
}
