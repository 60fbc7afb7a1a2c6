//! Rate limits: commands per user and per address, the auth routes per
//! address, password attempts per username, socket handshakes per user and
//! per address, and client messages per socket. Each server here runs with
//! one low limit and the others off; a refusal is 429 `rate_limited` with
//! `retry_after_ms` and `Retry-After` (a socket message gets the same as an
//! error message), does nothing, and passes once the limit has refilled.
//!
//! Run: `cargo test -p ticketflow --test rate_limits` (PostgreSQL and NATS
//! up, or `TICKETFLOW_TEST_MODE=embedded`).

use std::time::{Duration, Instant};

use futures::SinkExt;
use reqwest::Method;
use serde_json::{json, Value};
use ticketflow::RateLimits;
use ticketflow_testkit::ws::{connect, next_json, nothing_more, send_json, Socket};
use ticketflow_testkit::{setup_on, ticket_path, Config, Reply, Setup, TestServer, TestUser};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// How long a refused request may take to pass again, at most, here.
const RECOVERY: Duration = Duration::from_secs(10);

async fn server_with(limits: RateLimits) -> TestServer {
    TestServer::start_with(Config {
        limits,
        ..Config::default()
    })
    .await
}

fn limit(text: &str) -> ticketflow_app::rate_limits::Limit {
    text.parse().expect("a limit")
}

/// 429 `rate_limited`, `retry_after_ms` in the error, and `Retry-After` in
/// whole seconds (rounded up, at least 1); returns the milliseconds.
#[track_caller]
fn assert_rate_limited(reply: &Reply) -> u64 {
    let body = &reply.body;
    assert_eq!(reply.status.as_u16(), 429, "{body:?}");
    assert_eq!(reply.error_code(), "rate_limited", "{body:?}");
    assert!(body["error"]["message"].is_string(), "{body:?}");
    let ms = body["error"]["retry_after_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("retry_after_ms: {body:?}"));
    assert!(ms >= 1, "{body:?}");
    let seconds: u64 = reply
        .header("retry-after")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("Retry-After: {:?}", reply.headers));
    assert_eq!(seconds, ms.div_ceil(1000).max(1), "{body:?}");
    ms
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_user_past_the_command_limit_is_refused_changing_nothing_while_others_go_on() {
    let server = server_with(RateLimits {
        commands_per_user: limit("1/h:4"),
        ..RateLimits::off()
    })
    .await;
    // Four commands: the project, a member, a ticket, a change.
    let s = setup_on(server).await;
    let bob = s.member("bob").await;
    let id = s.ticket("first").await;
    let path = ticket_path(&id);
    assert_eq!(
        s.patch(&path, json!({ "title": "second" })).await.status,
        200
    );

    let refused = s.patch(&path, json!({ "title": "third" })).await;
    let ms = assert_rate_limited(&refused);
    assert!(ms > 3_000_000, "a cell an hour: {ms} ms to wait");
    assert_rate_limited(&s.try_ticket(json!({ "title": "another" })).await);
    assert_rate_limited(&s.delete(&path).await);
    let comments = format!("{path}/comments");
    assert_rate_limited(&s.post(&comments, json!({ "body": "hi" })).await);

    // Reads are not limited, and show that nothing happened.
    let ticket = s.get(&path).await;
    assert_eq!(ticket.status, 200);
    assert_eq!(ticket.body["title"], "second");
    assert_eq!(ticket.body["version"], 2);
    assert_eq!(s.server.history(&s.alice, &id).await.len(), 2);
    let tickets = s
        .server
        .list_all(&s.tickets_path(), &s.alice.token, 50)
        .await;
    assert_eq!(tickets.len(), 1);

    // Another user's commands are theirs to count.
    let created = s
        .server
        .ticket(&bob, &s.project_id, json!({ "title": "bob's" }))
        .await;
    assert_eq!(created.status, 201);
    let reply = s
        .server
        .patch(&path, &bob.token, json!({ "title": "by bob" }))
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}

/// Sends `command` until it is refused (at most `most` times).
async fn until_refused<F, Fut>(most: usize, mut command: F) -> Reply
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Reply>,
{
    for _ in 0..most {
        let reply = command().await;
        if reply.status == 429 {
            return reply;
        }
        assert!(reply.status.is_success(), "{:?}", reply.body);
    }
    panic!("still not refused after {most} commands")
}

/// Sends `command` until it passes, within [`RECOVERY`]; returns how long
/// that took.
async fn until_passed<F, Fut>(mut command: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Reply>,
{
    let started = Instant::now();
    loop {
        let reply = command().await;
        if reply.status.is_success() {
            return started.elapsed();
        }
        assert_rate_limited(&reply);
        assert!(
            started.elapsed() < RECOVERY,
            "still refused after {RECOVERY:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_command_limit_passes_again_once_it_has_refilled() {
    let server = server_with(RateLimits {
        commands_per_user: limit("4/s:2"),
        ..RateLimits::off()
    })
    .await;
    let s = setup_on(server).await;
    let id = s.ticket("t").await;
    let path = ticket_path(&id);
    let mut n = 0;
    let mut patch = || {
        n += 1;
        s.patch(&path, json!({ "title": format!("t{n}") }))
    };
    let refused = until_refused(20, &mut patch).await;
    let ms = assert_rate_limited(&refused);
    assert!(ms <= 250, "a cell every 250 ms: {ms} ms to wait");
    assert_eq!(refused.header("retry-after").as_deref(), Some("1"));
    until_passed(&mut patch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_address_limit_counts_every_user_of_the_address() {
    let server = server_with(RateLimits {
        commands_per_ip: limit("1/h:3"),
        ..RateLimits::off()
    })
    .await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    server.project(&alice, "ALICE").await;
    server.project(&bob, "BOB").await;
    server.project(&alice, "ALICE2").await;
    let project = json!({ "key": "BOB2", "name": "refused" });
    assert_rate_limited(&server.post("/api/projects", &bob.token, project).await);
    // Not even a valid token is needed to be counted.
    let nobody = json!({ "key": "NOBODY", "name": "refused" });
    assert_rate_limited(&server.post("/api/projects", "nonsense", nobody).await);
}

/// POSTs `body` to `path` through a proxy that says the client is `address`.
async fn post_from(
    server: &TestServer,
    path: &str,
    token: Option<&str>,
    body: Value,
    address: &str,
) -> Reply {
    let forwarded = [("x-forwarded-for", address)];
    server
        .call(Method::POST, path, token, Some(body), &forwarded)
        .await
}

async fn create_project_from(
    server: &TestServer,
    user: &TestUser,
    key: &str,
    address: &str,
) -> Reply {
    let body = json!({ "key": key, "name": key });
    post_from(server, "/api/projects", Some(&user.token), body, address).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forwarded_for_names_the_client_only_behind_a_trusted_proxy() {
    let limits = RateLimits {
        commands_per_ip: limit("1/h:1"),
        ..RateLimits::off()
    };
    let direct = server_with(limits.clone()).await;
    let alice = direct.user("alice").await;
    let first = create_project_from(&direct, &alice, "ONE", "203.0.113.1").await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    // Whatever the client claims, its address is the peer's.
    let second = create_project_from(&direct, &alice, "TWO", "203.0.113.2").await;
    assert_rate_limited(&second);

    let proxied = server_with(RateLimits {
        trusted_proxies: "127.0.0.0/8".parse().expect("networks"),
        ..limits
    })
    .await;
    let alice = proxied.user("alice").await;
    for (key, address) in [("ONE", "203.0.113.1"), ("TWO", "203.0.113.2")] {
        let reply = create_project_from(&proxied, &alice, key, address).await;
        assert_eq!(reply.status, 201, "{address}: {:?}", reply.body);
    }
    // A client's own entry before the proxy's does not make a new address.
    let spoofed = create_project_from(&proxied, &alice, "THREE", "198.51.100.7, 203.0.113.1").await;
    assert_rate_limited(&spoofed);
}

async fn login_from(server: &TestServer, username: &str, password: &str, address: &str) -> Reply {
    let body = json!({ "username": username, "password": password });
    post_from(server, "/api/auth/login", None, body, address).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn password_attempts_per_username_stop_guessing_from_any_address() {
    let server = server_with(RateLimits {
        logins_per_username: limit("1/h:4"),
        trusted_proxies: "127.0.0.1".parse().expect("an address"),
        ..RateLimits::off()
    })
    .await;
    // One attempt: the login of `user`.
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    for address in ["203.0.113.1", "203.0.113.2"] {
        let guess = login_from(&server, "bob", "guess guess", address).await;
        assert_eq!(guess.status, 401, "{:?}", guess.body);
    }
    let change = json!({ "current_password": "guess guess", "new_password": "whatever1" });
    let wrong = server
        .post("/api/auth/password", &bob.token, change.clone())
        .await;
    assert_eq!(wrong.status, 403, "{:?}", wrong.body);
    // The right password is refused too: the answer must not tell.
    let right = login_from(&server, "bob", "password123", "203.0.113.3").await;
    assert_rate_limited(&right);
    let changed = server.post("/api/auth/password", &bob.token, change).await;
    assert_rate_limited(&changed);
    // Other usernames are not concerned, nor names no user can have.
    assert_eq!(server.login("carol", "password123").await.status, 200);
    assert_eq!(carol.username, "carol");
    for _ in 0..5 {
        assert_eq!(
            server.login("No Such User!", "password123").await.status,
            401
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_auth_routes_are_limited_per_address() {
    let server = server_with(RateLimits {
        auth_per_ip: limit("1/h:3"),
        trusted_proxies: "127.0.0.1".parse().expect("an address"),
        ..RateLimits::off()
    })
    .await;
    // Register and login: two.
    let alice = server.user("alice").await;
    let refresh = json!({ "refresh_token": alice.refresh_token });
    let call = |path, body, address| post_from(&server, path, None, body, address);
    let loopback = "127.0.0.1";
    let rotated = call("/api/auth/refresh", refresh, loopback).await;
    assert_eq!(rotated.status, 200, "{:?}", rotated.body);
    let dave = json!({ "username": "dave", "password": "password123" });
    assert_rate_limited(&call("/api/auth/register", dave.clone(), loopback).await);
    let logout = json!({ "refresh_token": rotated.body["refresh_token"] });
    assert_rate_limited(&call("/api/auth/logout", logout, loopback).await);
    // Refused, nothing was done: dave does not exist yet, and may register
    // from another address.
    let elsewhere = call("/api/auth/register", dave, "203.0.113.5").await;
    assert_eq!(elsewhere.status, 201, "{:?}", elsewhere.body);
    // Reads are not counted.
    assert_eq!(server.get("/api/me", &alice.token).await.status, 200);
}

/// A refused handshake's status, headers and body.
async fn handshake_refusal(url: &str) -> Reply {
    match tokio_tungstenite::connect_async(url).await {
        Err(WsError::Http(response)) => {
            let body = response.body().as_deref().unwrap_or_default();
            let headers = response
                .headers()
                .iter()
                .map(|(name, value)| {
                    let name = reqwest::header::HeaderName::from_bytes(name.as_ref());
                    let value = reqwest::header::HeaderValue::from_bytes(value.as_bytes());
                    (name.expect("header name"), value.expect("header value"))
                })
                .collect();
            Reply {
                status: reqwest::StatusCode::from_u16(response.status().as_u16()).expect("status"),
                headers,
                body: serde_json::from_slice(body).expect("a JSON body"),
            }
        }
        other => panic!("expected an HTTP refusal, got {:?}", other.map(|_| ())),
    }
}

fn notifications_url(server: &TestServer, user: &TestUser) -> String {
    format!(
        "{}?token={}",
        server.ws_url("/ws/notifications/"),
        user.token
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn handshakes_past_the_users_limit_are_refused_before_the_upgrade() {
    let server = server_with(RateLimits {
        handshakes_per_user: limit("1/h:2"),
        ..RateLimits::off()
    })
    .await;
    let s = setup_on(server).await;
    let bob = s.member("bob").await;
    let tickets = format!(
        "{}?token={}",
        s.server
            .ws_url(&format!("/ws/projects/{}/tickets/", s.project_id)),
        s.alice.token
    );
    let _first = connect(&tickets).await;
    let _second = connect(&notifications_url(&s.server, &s.alice)).await;
    assert_rate_limited(&handshake_refusal(&tickets).await);
    let presence = s
        .server
        .ws_url(&format!("/ws/projects/{}/presence/", s.project_id));
    let presence = format!("{presence}?token={}", s.alice.token);
    assert_rate_limited(&handshake_refusal(&presence).await);
    // Bob's are his own.
    let mut bobs = connect(&notifications_url(&s.server, &bob)).await;
    assert_eq!(next_json(&mut bobs).await["type"], "connection_established");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn handshakes_past_the_address_limit_are_refused_before_the_token_is_read() {
    let server = server_with(RateLimits {
        handshakes_per_ip: limit("1/h:2"),
        ..RateLimits::off()
    })
    .await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let _first = connect(&notifications_url(&server, &alice)).await;
    let _second = connect(&notifications_url(&server, &bob)).await;
    assert_rate_limited(&handshake_refusal(&notifications_url(&server, &alice)).await);
    let no_token = server.ws_url("/ws/notifications/");
    assert_rate_limited(&handshake_refusal(&no_token).await);
}

/// Alice's presence socket, past `presence_state`.
async fn present(s: &Setup, user: &TestUser) -> Socket {
    let url = s
        .server
        .ws_url(&format!("/ws/projects/{}/presence/", s.project_id));
    let mut socket = connect(&format!("{url}?token={}", user.token)).await;
    assert_eq!(
        next_json(&mut socket).await["type"],
        "connection_established"
    );
    assert_eq!(next_json(&mut socket).await["type"], "presence_state");
    socket
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn socket_messages_past_the_limit_are_answered_rate_limited_and_dropped() {
    let server = server_with(RateLimits {
        socket_messages: limit("4/s:3"),
        ..RateLimits::off()
    })
    .await;
    let s = setup_on(server).await;
    let bob = s.member("bob").await;
    let refused_ticket = s.ticket("refused").await;
    let ticket = s.ticket("watched").await;
    let mut bobs = present(&s, &bob).await;
    let mut alices = present(&s, &s.alice).await;
    assert_eq!(next_json(&mut bobs).await["action"], "joined");

    // Sent at once, so the limit cannot refill in between.
    let refused_viewing = json!({ "type": "viewing", "ticket_id": refused_ticket });
    for n in 0..4 {
        let ping = json!({ "type": "ping", "timestamp": n }).to_string();
        alices.feed(Message::text(ping)).await.expect("send a ping");
    }
    alices
        .feed(Message::text(refused_viewing.to_string()))
        .await
        .expect("send viewing");
    alices.flush().await.expect("flush");
    let mut answers = Vec::new();
    for _ in 0..5 {
        answers.push(next_json(&mut alices).await);
    }
    for (n, pong) in answers[..3].iter().enumerate() {
        assert_eq!(pong, &json!({ "type": "pong", "timestamp": n }));
    }
    for refused in &answers[3..] {
        assert_eq!(refused["type"], "error", "{refused}");
        assert_eq!(refused["code"], "rate_limited", "{refused}");
        assert!(refused["message"].is_string(), "{refused}");
        let ms = refused["retry_after_ms"].as_u64().expect("retry_after_ms");
        assert!((1..=250).contains(&ms), "{refused}");
    }

    // Once refilled, the socket (still open) takes messages again: each
    // `viewing` either reaches bob or is refused to alice. The refused one
    // reached nobody: bob's first message is the one accepted.
    let viewing = json!({ "type": "viewing", "ticket_id": ticket });
    let started = Instant::now();
    let seen = loop {
        send_json(&mut alices, viewing.clone()).await;
        tokio::select! {
            refused = next_json(&mut alices) => {
                assert_eq!(refused["code"], "rate_limited", "{refused}");
            }
            seen = next_json(&mut bobs) => break seen,
        }
        assert!(
            started.elapsed() < RECOVERY,
            "still refused after {RECOVERY:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(seen["type"], "ticket_viewing", "{seen}");
    assert_eq!(seen["ticket_id"], json!(ticket));
    nothing_more(&mut bobs, "one viewing accepted").await;
}
