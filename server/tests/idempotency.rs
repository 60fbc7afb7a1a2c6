//! `Idempotency-Key` over real HTTP: a repeated keyed request gets the first
//! response and appends nothing; keys are per user; a changed request under a
//! used key is refused; failures are not kept; one key never runs twice.
//!
//! Run: `cargo test -p ticketflow --test idempotency` (PostgreSQL must be up).

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use ticketflow_testkit::{
    assert_error, assert_error_in, id_of, setup, ticket_path, Reply, Setup, TestUser,
};

async fn keyed(
    s: &Setup,
    user: &TestUser,
    method: Method,
    path: &str,
    body: Option<Value>,
    key: &str,
) -> Reply {
    s.server
        .call(
            method,
            path,
            Some(&user.token),
            body,
            &[("idempotency-key", key)],
        )
        .await
}

/// A keyed request as alice.
async fn by_alice(s: &Setup, method: Method, path: &str, body: Value, key: &str) -> Reply {
    keyed(s, &s.alice, method, path, Some(body), key).await
}

/// The first response came back: same status, body, ETag and X-Position.
#[track_caller]
fn assert_replayed(first: &Reply, again: &Reply) {
    assert_eq!(again.status, first.status, "{:?}", again.body);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("etag"), first.header("etag"));
    assert_eq!(again.header("x-position"), first.header("x-position"));
    assert!(
        again.header("x-position").is_some(),
        "X-Position on replays"
    );
}

/// Sends one keyed request as alice twice: the first must come to
/// `status`, the second must be its replay. Returns the first.
async fn sent_twice(
    s: &Setup,
    (method, path): (Method, &str),
    body: Value,
    key: &str,
    status: StatusCode,
) -> Reply {
    let first = by_alice(s, method.clone(), path, body.clone(), key).await;
    assert_eq!(first.status, status, "{method} {path}: {:?}", first.body);
    let again = by_alice(s, method, path, body, key).await;
    assert_replayed(&first, &again);
    first
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repeated_create_returns_the_first_response_and_creates_once() {
    let s = setup().await;
    let path = s.tickets_path();
    let created = StatusCode::CREATED;
    let first = sent_twice(
        &s,
        (Method::POST, &path),
        json!({ "title": "once" }),
        "k1",
        created,
    )
    .await;

    let listed = s.server.list_all(&path, &s.alice.token, 50).await;
    assert_eq!(listed.len(), 1);
    let history = s.server.history(&s.alice, &id_of(&first.body)).await;
    assert_eq!(history.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repeated_patch_and_comment_append_one_event_each() {
    let s = setup().await;
    let id = s.ticket("t").await;
    let path = ticket_path(&id);
    let patch = json!({ "priority": "high" });
    let first = by_alice(&s, Method::PATCH, &path, patch.clone(), "p").await;
    assert_eq!(first.status, StatusCode::OK);
    // Someone else moves the ticket on; the retry still gets its own answer.
    s.patch(&path, json!({ "title": "moved" })).await;
    let again = by_alice(&s, Method::PATCH, &path, patch, "p").await;
    assert_replayed(&first, &again);
    assert_eq!(again.body["version"], 2);

    let comments = format!("{path}/comments");
    let comment = json!({ "body": "once" });
    sent_twice(
        &s,
        (Method::POST, &comments),
        comment,
        "c",
        StatusCode::CREATED,
    )
    .await;

    let history = s.server.history(&s.alice, &id).await;
    let types: Vec<&str> = history
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "TicketCreated",
            "TicketPriorityChanged",
            "TicketTitleChanged",
            "CommentAdded"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repeated_project_and_member_commands_do_not_conflict_with_themselves() {
    let s = setup().await;
    s.server.user("bob").await;
    let members = format!("/api/projects/{}/members", s.project_id);
    let cases = [
        ("/api/projects", json!({ "key": "ONCE", "name": "n" }), "pr"),
        (members.as_str(), json!({ "username": "bob" }), "m"),
    ];
    for (path, body, key) in cases {
        sent_twice(&s, (Method::POST, path), body, key, StatusCode::CREATED).await;
    }
}

/// The crash between a command's commit and storing its response: the retry
/// is answered from the commit (the same response), and nothing runs twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_after_dying_between_commit_and_response_runs_nothing_again() {
    let s = setup().await;
    let tickets = s.tickets_path();
    let first_ticket = by_alice(&s, Method::POST, &tickets, json!({ "title": "once" }), "t").await;
    assert_eq!(
        first_ticket.status,
        StatusCode::CREATED,
        "{:?}",
        first_ticket.body
    );
    let id = id_of(&first_ticket.body);
    let comments = format!("{}/comments", ticket_path(&id));
    let comment = json!({ "body": "once" });
    let first_comment = by_alice(&s, Method::POST, &comments, comment.clone(), "c").await;
    assert_eq!(first_comment.status, StatusCode::CREATED);
    let project = json!({ "key": "ONCE", "name": "n" });
    let first_project = by_alice(&s, Method::POST, "/api/projects", project.clone(), "p").await;
    assert_eq!(first_project.status, StatusCode::CREATED);

    s.server.forget_idempotent_responses().await;
    let retries = [
        (
            &first_ticket,
            tickets.as_str(),
            json!({ "title": "once" }),
            "t",
        ),
        (&first_comment, comments.as_str(), comment, "c"),
        (&first_project, "/api/projects", project, "p"),
    ];
    for (first, path, body, key) in retries {
        let again = by_alice(&s, Method::POST, path, body, key).await;
        assert_replayed(first, &again);
        assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    }
    // Kept this time: a third try replays the stored response.
    let third = by_alice(&s, Method::POST, &tickets, json!({ "title": "once" }), "t").await;
    assert_replayed(&first_ticket, &third);

    assert_eq!(
        s.server.list_all(&tickets, &s.alice.token, 50).await.len(),
        1
    );
    let history = s.server.history(&s.alice, &id).await;
    let types: Vec<&str> = history
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["TicketCreated", "CommentAdded"]);
    let projects = s.server.list_all("/api/projects", &s.alice.token, 50).await;
    let once = projects.iter().filter(|p| p["key"] == "ONCE").count();
    assert_eq!(once, 1, "{projects:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_key_with_another_body_or_route_is_422_idempotency_key_reused() {
    let s = setup().await;
    let id = s.ticket("t").await;
    let path = s.tickets_path();
    let first = by_alice(&s, Method::POST, &path, json!({ "title": "a" }), "k").await;
    assert_eq!(first.status, StatusCode::CREATED);

    let patch = ticket_path(&id);
    let cases = [
        ("another body", Method::POST, &path, json!({ "title": "b" })),
        (
            "another route",
            Method::PATCH,
            &patch,
            json!({ "title": "a" }),
        ),
    ];
    for (case, method, path, body) in cases {
        let reply = by_alice(&s, method, path, body, "k").await;
        assert_error_in(case, &reply, 422, "idempotency_key_reused", None);
    }
    assert_eq!(s.server.history(&s.alice, &id).await.len(), 1);
    assert_eq!(s.server.list_all(&path, &s.alice.token, 50).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_request_is_not_kept_and_may_be_retried_with_its_key() {
    let s = setup().await;
    let path = s.tickets_path();
    let failed = by_alice(&s, Method::POST, &path, json!({ "title": "" }), "r").await;
    assert_error(&failed, 422, "invalid_field", Some("title"));
    let ok = json!({ "title": "ok" });
    let fixed = sent_twice(&s, (Method::POST, &path), ok, "r", StatusCode::CREATED).await;

    // A 409 is a failure too: not kept.
    let id = id_of(&fixed.body);
    let stale = s
        .server
        .call(
            Method::PATCH,
            &ticket_path(&id),
            Some(&s.alice.token),
            Some(json!({ "title": "x" })),
            &[("idempotency-key", "v"), ("if-match", "\"7\"")],
        )
        .await;
    assert_error(&stale, 409, "version_conflict", None);
    let retry = by_alice(
        &s,
        Method::PATCH,
        &ticket_path(&id),
        json!({ "title": "x" }),
        "v",
    )
    .await;
    assert_eq!(retry.status, StatusCode::OK, "{:?}", retry.body);
    assert_eq!(s.server.list_all(&path, &s.alice.token, 50).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_are_scoped_per_user() {
    let s = setup().await;
    let bob = s.member("bob").await;
    let path = s.tickets_path();
    let body = Some(json!({ "title": "same" }));
    let by_alice = keyed(&s, &s.alice, Method::POST, &path, body.clone(), "shared").await;
    let by_bob = keyed(&s, &bob, Method::POST, &path, body, "shared").await;
    assert_eq!(by_alice.status, StatusCode::CREATED);
    assert_eq!(by_bob.status, StatusCode::CREATED, "{:?}", by_bob.body);
    assert_ne!(id_of(&by_alice.body), id_of(&by_bob.body));
    assert_eq!(by_bob.body["reporter"]["username"], "bob");
    assert_eq!(s.server.list_all(&path, &s.alice.token, 50).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repeated_delete_is_204_both_times() {
    let s = setup().await;
    let id = s.ticket("t").await;
    let path = ticket_path(&id);
    let first = keyed(&s, &s.alice, Method::DELETE, &path, None, "d").await;
    assert_eq!(first.status, StatusCode::NO_CONTENT);
    let again = keyed(&s, &s.alice, Method::DELETE, &path, None, "d").await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    assert_eq!(again.header("x-position"), first.header("x-position"));
    assert!(first.header("x-position").is_some());
    // Without the key, the second delete is a command on a deleted ticket.
    assert_error(&s.delete(&path).await, 404, "not_found", None);
    assert_eq!(s.server.history(&s.alice, &id).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_with_one_key_never_both_execute() {
    let s = setup().await;
    let path = s.tickets_path();
    let body = json!({ "title": "raced" });
    let sends = (0..10).map(|_| by_alice(&s, Method::POST, &path, body.clone(), "race"));
    let replies = join_all(sends).await;
    let created: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .collect();
    assert!(!created.is_empty());
    for reply in &replies {
        if reply.status != StatusCode::CREATED {
            assert_error(reply, 409, "idempotency_in_progress", None);
        }
    }
    for reply in &created {
        assert_eq!(
            reply.body, created[0].body,
            "every 201 is the one execution"
        );
    }
    assert_eq!(s.server.list_all(&path, &s.alice.token, 50).await.len(), 1);
}
