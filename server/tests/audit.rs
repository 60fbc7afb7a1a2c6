//! The log's hash chain through the real binary and the API, in the mode the
//! suite runs in: an intact log verifies and its head is served; an event
//! altered, removed or inserted beneath the API (plain SQL) is named by
//! `ticketflow audit verify`, each in a fresh log.

use std::process::{Command, Output};

use serde_json::{json, Value};
use ticketflow_testkit::Home;
use ticketflow_testkit::{setup, Setup};

/// `ticketflow audit verify` (with `extra` arguments) on the test server's
/// store, while the server runs.
fn verify(s: &Setup, extra: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ticketflow"));
    command
        .args(["audit", "verify"])
        .args(extra)
        .env_remove("DATABASE_URL")
        .env_remove("NATS_URL")
        .env_remove("TICKETFLOW_DATA_DIR")
        .env("RUST_LOG", "warn");
    match &s.server.home {
        Home::Services(home) => command.env("DATABASE_URL", &home.db.url),
        Home::Embedded { dir } => command.arg("--data-dir").arg(dir.path()),
    };
    command.output().expect("run ticketflow")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A project with a few tickets, comments and changes; returns the feed.
async fn some_history(s: &Setup) -> Vec<Value> {
    for title in [
        "Fix login bug",
        "Écrire la doc \"vite\"",
        "Add 😀 reactions",
    ] {
        let ticket = s.ticket(title).await;
        let path = format!("/api/tickets/{ticket}");
        s.patch(&path, json!({ "priority": "high" })).await;
        s.post(&format!("{path}/comments"), json!({ "body": "On it" }))
            .await;
    }
    feed(s).await
}

async fn feed(s: &Setup) -> Vec<Value> {
    let path = format!("/api/projects/{}/events", s.project_id);
    s.server.list_all(&path, &s.alice.token, 100).await
}

fn position_of(item: &Value) -> i64 {
    item["position"].as_i64().expect("position")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_intact_log_verifies_and_its_head_is_served_and_carried_by_every_event() {
    let s = setup().await;
    let events = some_history(&s).await;
    let last = events.last().expect("events");

    let out = verify(&s, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let head = s.get("/api/audit/head").await;
    assert_eq!(head.status.as_u16(), 200);
    let hash = last["hash"].as_str().expect("a hash on the feed item");
    assert_eq!(
        head.body,
        json!({ "position": position_of(last), "hash": hash })
    );
    assert_eq!(
        text(&out.stdout).trim(),
        format!(
            "verified {} events, head {} hash {hash}",
            events.len(),
            position_of(last)
        )
    );

    // Every event carries its own hash, the same in the feed and in history.
    let hashes: std::collections::BTreeSet<&str> =
        events.iter().filter_map(|e| e["hash"].as_str()).collect();
    assert_eq!(hashes.len(), events.len());
    assert!(hashes
        .iter()
        .all(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())));
    let ticket = events
        .iter()
        .find_map(|e| e["ticket_id"].as_str())
        .expect("a ticket event");
    for item in s.server.history(&s.alice, ticket).await {
        let in_feed = events.iter().find(|e| e["position"] == item["position"]);
        assert_eq!(in_feed.map(|e| &e["hash"]), Some(&item["hash"]));
    }

    // From a later position, chaining from the stored hash before it.
    let from = position_of(&events[events.len() / 2]).to_string();
    let out = verify(&s, &["--from", &from]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).ends_with(&format!("hash {hash}\n")));

    // The head follows the log.
    let more = s.ticket("One more").await;
    let head = s.get("/api/audit/head").await;
    let newest = feed(&s).await.pop().expect("events");
    assert_eq!(newest["ticket_id"], json!(more));
    assert_eq!(head.body["hash"], newest["hash"]);
    assert_eq!(head.body["position"], newest["position"]);
    assert_ne!(head.body["hash"], json!(hash));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_head_needs_a_signed_in_user() {
    let s = setup().await;
    let reply = s.server.get("/api/audit/head", "not-a-token").await;
    assert_eq!(reply.status.as_u16(), 401);
    assert_eq!(reply.error_code(), "unauthenticated");
}

/// Tampers with a fresh log beneath the API, then checks that `audit
/// verify` fails naming `position` and what happened there, and (when the
/// events after it kept their positions) that verifying from past the break
/// passes.
async fn tampered_log_is_named(
    tamper: impl Fn(i64) -> (String, String),
    what: &str,
    later_events_intact: bool,
) {
    let s = setup().await;
    let events = some_history(&s).await;
    let position = position_of(&events[events.len() / 2]);
    assert!(verify(&s, &[]).status.success());
    let (postgres, sqlite) = tamper(position);
    s.server.run_sql(&postgres, &sqlite).await;

    let out = verify(&s, &[]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "verify passed a tampered log");
    assert!(
        stderr.contains(&format!("position {position}: {what}")),
        "{stderr}"
    );
    let after = (position + 2).to_string();
    let out = verify(&s, &["--from", &after]);
    assert_eq!(
        out.status.success(),
        later_events_intact,
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_altered_event_is_named() {
    tampered_log_is_named(
        |p| {
            (
                format!(
                    "UPDATE events SET data = data || '{{\"title\": \"Forged\"}}' \
                     WHERE position = {p}"
                ),
                format!(
                    "UPDATE events SET data = json_set(data, '$.title', 'Forged') \
                     WHERE position = {p}"
                ),
            )
        },
        "altered",
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removed_event_is_named() {
    tampered_log_is_named(
        |p| {
            let sql = format!("DELETE FROM events WHERE position = {p}");
            (sql.clone(), sql)
        },
        "removed",
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_inserted_event_is_named() {
    // Room is made at the position by moving every later event up one, and
    // a copy of the event there (with its hash) forged into it.
    let shift_and_forge = |p: i64, new_id: &str| {
        format!(
            "UPDATE events SET position = -position WHERE position >= {p};
             UPDATE events SET position = 1 - position WHERE position < 0;
             INSERT INTO events (position, event_id, stream_id, stream_type, project_id,
                 version, seq, event_type, schema_version, data, metadata, occurred_at, hash)
             SELECT {p}, {new_id}, stream_id, stream_type, project_id, version + 1000, NULL,
                 event_type, schema_version, data, metadata, occurred_at, hash
             FROM events WHERE position = {p} + 1;"
        )
    };
    tampered_log_is_named(
        |p| {
            (
                shift_and_forge(p, "gen_random_uuid()"),
                shift_and_forge(p, "randomblob(16)"),
            )
        },
        "inserted",
        false,
    )
    .await;
}
