//! The `ticketflow` binary itself: `projections status` and `projections
//! rebuild` against a database the API has filled, and `notify` (an
//! operator's notification) on PostgreSQL and on an embedded data directory.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use ticketflow_testkit::ws::{connect, next_json};
use ticketflow_testkit::{setup, Setup, TestServer, TestUser};

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

/// `ticketflow` on a data directory, with no PostgreSQL or NATS configured.
fn ticketflow_embedded(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ticketflow"));
    command
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("DATABASE_URL")
        .env_remove("NATS_URL")
        .env_remove("TICKETFLOW_DATA_DIR")
        .env("RUST_LOG", "warn");
    // The stopped server's handles may take a moment to close.
    for _ in 0..50 {
        let out = command.output().expect("run ticketflow");
        if !String::from_utf8_lossy(&out.stderr).contains("is in use by another") {
            return out;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the data directory stayed locked");
}

fn succeeded(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const NOTIFY_BOB: [&str; 7] = [
    "notify",
    "--user",
    "bob",
    "--title",
    "System Alert",
    "--message",
    "Your report is ready!",
];

/// `user`'s notifications once they number `n` (the CLI's event reaches
/// the read models a moment after it is appended).
async fn notifications_once(server: &TestServer, user: &TestUser, n: usize) -> Value {
    for _ in 0..100 {
        let list = server.get("/api/notifications", &user.token).await.body;
        if list["items"].as_array().map_or(0, Vec::len) >= n {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{} never had {n} notifications", user.username);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notify_sends_one_user_a_general_notification_that_a_rebuild_keeps() {
    let s = setup().await;
    let bob = s.member("bob").await;
    let carol = s.member("carol").await;
    // bob's and carol's seq 1: an announcement.
    let announced = s
        .post(
            &format!("/api/projects/{}/announcements", s.project_id),
            json!({ "title": "Hello", "message": "Welcome" }),
        )
        .await;
    assert_eq!(announced.status.as_u16(), 201);
    notifications_once(&s.server, &bob, 1).await;

    let (server, before) = match s.server.database_url().map(str::to_string) {
        Some(url) => {
            let socket = s
                .server
                .ws_url(&format!("/ws/notifications/?token={}&since=1", bob.token));
            let mut socket = connect(&socket).await;
            next_json(&mut socket).await;
            assert_eq!(next_json(&mut socket).await["type"], "replay_complete");
            let out = ticketflow(&url, &NOTIFY_BOB);
            succeeded(&out);
            assert!(String::from_utf8_lossy(&out.stdout).contains("notice"));
            let live = next_json(&mut socket).await;
            assert_eq!(live["type"], "notification_message");
            assert_eq!(live["seq"], 2);
            let before = notifications_once(&s.server, &bob, 2).await;
            assert_eq!(before["items"][0], live["data"]);
            succeeded(&ticketflow(&url, &["projections", "rebuild", "--all"]));
            (s.server, before)
        }
        None => {
            // Embedded: the CLI needs the data directory to itself.
            let server = s
                .server
                .restart_after(|dir| {
                    let dir = dir.expect("an embedded data directory");
                    succeeded(&ticketflow_embedded(dir, &NOTIFY_BOB));
                })
                .await;
            let before = notifications_once(&server, &bob, 2).await;
            let server = server
                .restart_after(|dir| {
                    let dir = dir.expect("an embedded data directory");
                    succeeded(&ticketflow_embedded(
                        dir,
                        &["projections", "rebuild", "--all"],
                    ));
                })
                .await;
            (server, before)
        }
    };
    let notice = &before["items"][0];
    assert_eq!(notice["seq"], 2);
    assert_eq!(notice["notification_type"], "general");
    assert_eq!(notice["title"], "System Alert");
    assert_eq!(notice["message"], "Your report is ready!");
    assert_eq!(notice["ticket_id"], Value::Null);
    assert_eq!(notice["ticket_key"], Value::Null);
    assert_eq!(notice["project_id"], Value::Null);
    assert_eq!(notice["read"], false);
    assert_eq!(before["unread_count"], 2);
    // After the rebuild: the same notifications, ids and seqs.
    assert_eq!(notifications_once(&server, &bob, 2).await, before);
    // bob alone: carol has the announcement only.
    let carols = server.get("/api/notifications", &carol.token).await.body;
    assert_eq!(carols["items"].as_array().expect("items").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notify_refuses_an_unknown_user_and_bad_fields() {
    let s = setup().await;
    let bob = s.member("bob").await;
    let long = "m".repeat(2001);
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "notify",
                "--user",
                "nobody",
                "--title",
                "t",
                "--message",
                "m",
            ],
            "no user has the username \"nobody\"",
        ),
        (
            &["notify", "--user", "bob", "--title", "", "--message", "m"],
            "title must not be blank",
        ),
        (
            &[
                "notify",
                "--user",
                "bob",
                "--title",
                &"t".repeat(201),
                "--message",
                "m",
            ],
            "title must be 1 to 200 characters",
        ),
        (
            &[
                "notify",
                "--user",
                "bob",
                "--title",
                "t",
                "--message",
                &long,
            ],
            "message must be 1 to 2000 characters",
        ),
    ];
    let check = |out: std::process::Output, expected: &str| {
        assert!(!out.status.success(), "{expected}: succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{expected}: {err}");
    };
    let server = match s.server.database_url().map(str::to_string) {
        Some(url) => {
            for (args, expected) in cases {
                check(ticketflow(&url, args), expected);
            }
            s.server
        }
        None => {
            s.server
                .restart_after(|dir| {
                    let dir = dir.expect("an embedded data directory");
                    for (args, expected) in cases {
                        check(ticketflow_embedded(dir, args), expected);
                    }
                })
                .await
        }
    };
    // Nothing was appended: bob has no notification.
    let list = server.get("/api/notifications", &bob.token).await.body;
    assert_eq!(list["items"], json!([]));
}
