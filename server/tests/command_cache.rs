//! Commands start from aggregates cached per instance. Another instance's
//! writes make those caches stale; these tests write through one instance
//! and command through another, and expect exactly what a fresh load gives.
//!
//! Run: `cargo test -p ticketflow --test command_cache` (PostgreSQL must be up).

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use ticketflow_testkit::Front;
use ticketflow_testkit::{id_of, setup, ticket_path};

/// Sends a command to `front`, another instance than the test server.
async fn command(
    front: &Front,
    method: Method,
    path: &str,
    token: &str,
    body: Value,
    if_match: Option<u64>,
) -> (StatusCode, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", front.base))
        .bearer_auth(token)
        .json(&body);
    if let Some(version) = if_match {
        req = req.header("if-match", format!("\"{version}\""));
    }
    let reply = req.send().await.expect("request");
    let status = reply.status();
    (status, reply.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_removed_elsewhere_can_no_longer_write_here() {
    let s = setup().await;
    let bob = s.member("bob").await;
    let Some(other) = s.server.another_instance().await else {
        return; // Embedded: one instance.
    };
    let path = ticket_path(&s.ticket("t").await);
    let patch = || json!({ "title": "by bob" });

    let (status, _) = command(&other, Method::PATCH, &path, &bob.token, patch(), None).await;
    assert_eq!(status, StatusCode::OK, "bob writes while a member");
    let removal = format!("/api/projects/{}/members/{}", s.project_id, bob.id);
    let removed = s.delete(&removal).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);

    let (status, body) = command(&other, Method::PATCH, &path, &bob.token, patch(), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let tickets = s.tickets_path();
    let (status, body) = command(&other, Method::POST, &tickets, &bob.token, patch(), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_added_elsewhere_can_write_here_at_once() {
    let s = setup().await;
    let carol = s.server.user("carol").await;
    let Some(other) = s.server.another_instance().await else {
        return; // Embedded: one instance.
    };
    let tickets = s.tickets_path();
    let body = || json!({ "title": "by carol" });

    let (status, _) = command(&other, Method::POST, &tickets, &carol.token, body(), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not a member yet");
    s.server.add_member(&s.alice, &s.project_id, &carol).await;

    let (status, created) =
        command(&other, Method::POST, &tickets, &carol.token, body(), None).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let path = ticket_path(&id_of(&created));
    let (status, _) = command(&other, Method::PATCH, &path, &carol.token, body(), None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn if_match_is_checked_against_writes_made_elsewhere() {
    let s = setup().await;
    let Some(other) = s.server.another_instance().await else {
        return; // Embedded: one instance.
    };
    let path = ticket_path(&s.ticket("t").await);
    let token = &s.alice.token;
    let title = |t: &str| json!({ "title": t });

    // `other` caches the ticket at version 2; the test server moves it to 3.
    let (status, _) = command(&other, Method::PATCH, &path, token, title("a"), Some(1)).await;
    assert_eq!(status, StatusCode::OK);
    let moved = s.server.patch(&path, token, title("b")).await;
    assert_eq!(moved.body["version"], 3);

    let (status, body) = command(&other, Method::PATCH, &path, token, title("c"), Some(3)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the current version matches: {body}"
    );
    assert_eq!(body["version"], 4);
    let (status, body) = command(&other, Method::PATCH, &path, token, title("d"), Some(3)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["current_version"], 4);
    // Without If-Match, a write over a stale cache lands on the current state.
    let moved = s.server.patch(&path, token, title("e")).await;
    assert_eq!(moved.body["version"], 5);
    let (status, body) = command(&other, Method::PATCH, &path, token, title("f"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["version"], 6);
}
