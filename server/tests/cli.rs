//! The `ticketflow` binary itself: `projections status` and `projections
//! rebuild` against a database the API has filled.

mod common;

use std::process::Command;

use reqwest::StatusCode;
use serde_json::json;

use common::setup;

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
    s.server
        .patch(
            &path,
            &s.alice.token,
            json!({ "assignee_id": bob.id, "status_id": 2 }),
        )
        .await;
    s.server
        .post(
            &format!("{path}/comments"),
            &s.alice.token,
            json!({ "body": "@bob look" }),
        )
        .await;
    let before = (
        s.server.get(&path, &bob.token).await.body,
        s.server
            .get(&format!("{path}/comments"), &bob.token)
            .await
            .body,
        s.server.get("/api/notifications", &bob.token).await.body,
    );

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
    let after = (
        s.server.get(&path, &bob.token).await.body,
        s.server
            .get(&format!("{path}/comments"), &bob.token)
            .await
            .body,
        s.server.get("/api/notifications", &bob.token).await.body,
    );
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
    assert_eq!(
        s.server.get("/api/projects", &s.alice.token).await.status,
        StatusCode::OK
    );
}
