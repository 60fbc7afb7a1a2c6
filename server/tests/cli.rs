//! The `ticketflow` binary itself: `projections status` and `projections
//! rebuild` against a database the API has filled.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::{json, Value};

use ticketflow_testkit::{setup, Setup, TestUser};

/// What `user` reads of a ticket: the ticket, its comments, their notifications.
async fn seen_by(s: &Setup, user: &TestUser, ticket: &str) -> (Value, Value, Value) {
    let get = |path: String| async move { s.server.get(&path, &user.token).await.body };
    (
        get(ticket.to_string()).await,
        get(format!("{ticket}/comments")).await,
        get("/api/notifications".to_string()).await,
    )
}

fn ticketflow(database_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ticketflow"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run ticketflow")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebuild_all_swaps_in_identical_read_models_and_status_reports_them() {
    let s = setup().await;
    let Some(url) = s.server.database_url().map(str::to_string) else {
        return; // Embedded: the CLI's commands work on PostgreSQL.
    };
    let bob = s.member("bob").await;
    let ticket = s.ticket("Fix login bug").await;
    let path = format!("/api/tickets/{ticket}");
    s.patch(&path, json!({ "assignee_id": bob.id, "status_id": 2 }))
        .await;
    s.post(&format!("{path}/comments"), json!({ "body": "@bob look" }))
        .await;
    let before = seen_by(&s, &bob, &path).await;

    let rebuilt = ticketflow(&url, &["projections", "rebuild", "--all"]);
    assert!(
        rebuilt.status.success(),
        "{}",
        String::from_utf8_lossy(&rebuilt.stderr)
    );
    let log = String::from_utf8_lossy(&rebuilt.stderr);
    for name in ["tickets", "comments", "notifications"] {
        assert!(
            log.contains(&format!("{name}: rebuilt at position")),
            "{log}"
        );
    }
    let after = seen_by(&s, &bob, &path).await;
    assert_eq!(after, before);

    let status = ticketflow(&url, &["projections", "status"]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let table = String::from_utf8_lossy(&status.stdout);
    for name in ["log head", "relay", "tickets", "comments", "notifications"] {
        assert!(table.contains(name), "status lacks {name}:\n{table}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebuilding_an_unknown_projection_fails_clearly() {
    let s = setup().await;
    let Some(url) = s.server.database_url().map(str::to_string) else {
        return; // Embedded: the CLI's commands work on PostgreSQL.
    };
    let out = ticketflow(&url, &["projections", "rebuild", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no projection named nope"));
    assert_eq!(s.get("/api/projects").await.status, StatusCode::OK);
}
