//! Old schema versions stay readable (upcast on read). Two
//! `TicketDescriptionChanged` events at schema version 1, as the v1 code
//! wrote them (`fixtures/v1_description_changes.json`, produced by that
//! code), are stored beneath the server with plain SQL; every reader then
//! sees them at version 2 (`added_mentions`): the aggregate, `/history`, the
//! feed, `as_of`, the projections (mention notifications included), the
//! ticket channel, and a rebuild. The stored rows keep version 1; new
//! appends store version 2. Both modes.

use std::path::Path;
use std::process::Command;

use chrono::Utc;
use reqwest::Method;
use serde_json::{json, Value};
use ticketflow_testkit::ws::{connect, next_json};
use ticketflow_testkit::{etag, setup, OldTicketEvent, Setup, TestServer, TestUser};
use uuid::Uuid;

/// The fixture's events on `ticket_id`, by `alice`, its users (the test
/// cast's bob and carol, whose ids the v1 code wrote) swapped for this
/// test's.
fn old_description_changes(
    ticket_id: &str,
    alice: &TestUser,
    users: &[&TestUser],
) -> Vec<OldTicketEvent> {
    let mut text = include_str!("fixtures/v1_description_changes.json").to_string();
    for (n, user) in [2u128, 3].iter().zip(users) {
        text = text.replace(&Uuid::from_u128(*n).to_string(), &user.id);
    }
    let rows: Vec<Value> = serde_json::from_str(&text).expect("the fixture");
    rows.into_iter()
        .map(|row| OldTicketEvent {
            ticket_id: ticket_id.parse().expect("a ticket id"),
            event_type: row["event_type"].as_str().expect("event_type").to_string(),
            schema_version: row["schema_version"].as_i64().expect("schema_version") as i32,
            data: row["data"].clone(),
            actor: json!({ "id": alice.id, "username": alice.username }),
            occurred_at: Utc::now(),
        })
        .collect()
}

fn actor(user: &TestUser) -> Value {
    json!({ "id": user.id, "username": user.username })
}

/// What the readers show of the two old events, upcast.
fn upcast_data(bob: &TestUser, carol: &TestUser) -> [Value; 2] {
    [
        json!({ "description": "Steps in the log. @bob can you look?", "added_mentions": [actor(bob)] }),
        json!({ "description": "Steps in the log. @bob can you look? cc @carol", "added_mentions": [actor(carol)] }),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn version_1_description_changes_read_as_version_2_everywhere() {
    let s = setup().await;
    let bob = s.member("bob").await;
    let carol = s.member("carol").await;
    let ticket = s.ticket("Fix login bug").await;
    let Setup {
        server,
        alice,
        project_id,
    } = s;
    let old = old_description_changes(&ticket, &alice, &[&bob, &carol]);
    let server = server.restart_with_old_events(&old).await;
    let path = format!("/api/tickets/{ticket}");
    assert_eq!(
        server.stored_schema_versions(ticket.parse().unwrap()).await,
        [1, 1, 1]
    );
    let expected = upcast_data(&bob, &carol);

    let history = server.history(&alice, &ticket).await;
    let shown: Vec<(&Value, &Value, &Value)> = history
        .iter()
        .map(|e| (&e["type"], &e["schema_version"], &e["data"]))
        .collect();
    assert_eq!(
        shown[1..],
        [
            (&json!("TicketDescriptionChanged"), &json!(2), &expected[0]),
            (&json!("TicketDescriptionChanged"), &json!(2), &expected[1]),
        ]
    );
    let feed = server
        .list_all(
            &format!("/api/projects/{project_id}/events"),
            &alice.token,
            50,
        )
        .await;
    let described: Vec<(&Value, &Value)> = feed
        .iter()
        .filter(|e| e["type"] == "TicketDescriptionChanged")
        .map(|e| (&e["schema_version"], &e["data"]))
        .collect();
    assert_eq!(
        described,
        [(&json!(2), &expected[0]), (&json!(2), &expected[1])]
    );

    // The projections applied them: the ticket, and the mentions' notices.
    let read = wait_for_version(&server, &alice, &path, 3).await;
    assert_eq!(read["description"], expected[1]["description"]);
    let as_of = server.get(&format!("{path}?as_of=2"), &alice.token).await;
    assert_eq!(as_of.body["description"], expected[0]["description"]);
    assert_eq!(mentioned(&server, &bob).await, 1);
    assert_eq!(mentioned(&server, &carol).await, 1);

    // The ticket channel carried them, each with its seq.
    let url = server.ws_url(&format!(
        "/ws/projects/{project_id}/tickets/?token={}&since=1",
        alice.token
    ));
    let mut socket = connect(&url).await;
    assert_eq!(
        next_json(&mut socket).await["type"],
        "connection_established"
    );
    for (seq, version) in [(2, 2), (3, 3)] {
        let message = next_json(&mut socket).await;
        assert_eq!(message["seq"], seq);
        assert_eq!(message["event_type"], "TicketDescriptionChanged");
        assert_eq!(message["data"]["version"], version);
    }

    // The aggregate read them: the next change continues at version 4, its
    // mentions of bob and carol are no news (the old events named them), and
    // it is stored at version 2.
    let changed = server
        .call(
            Method::PATCH,
            &path,
            Some(&alice.token),
            Some(json!({ "description": "cc @carol @bob, and @alice" })),
            &[("if-match", &etag(3))],
        )
        .await;
    assert_eq!(changed.status.as_u16(), 200, "{:?}", changed.body);
    assert_eq!(changed.body["version"], 4);
    assert_eq!(
        server.stored_schema_versions(ticket.parse().unwrap()).await,
        [1, 1, 1, 2]
    );
    let history = server.history(&alice, &ticket).await;
    assert_eq!(history[3]["data"]["added_mentions"], json!([]));
    assert_eq!(history[3]["schema_version"], 2);

    // A rebuild replays them into the same read models.
    let before = (
        wait_for_version(&server, &alice, &path, 4).await,
        server.get("/api/notifications", &bob.token).await.body,
    );
    let server = rebuild_all(server).await;
    let after = (
        wait_for_version(&server, &alice, &path, 4).await,
        server.get("/api/notifications", &bob.token).await.body,
    );
    assert_eq!(after, before);
}

async fn wait_for_version(server: &TestServer, user: &TestUser, path: &str, version: u64) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let reply = server.get(path, &user.token).await;
        if reply.body["version"] == version {
            return reply.body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{path} never reached version {version}: {:?}",
            reply.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// How many `mentioned` notifications `user` has, once the projection has
/// caught up on the log (waited for with a deadline).
async fn mentioned(server: &TestServer, user: &TestUser) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let body = server.get("/api/notifications", &user.token).await.body;
        let count = body["items"].as_array().map_or(0, |items| {
            items
                .iter()
                .filter(|n| n["notification_type"] == "mentioned")
                .count()
        });
        if count > 0 || std::time::Instant::now() > deadline {
            return count;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// `ticketflow projections rebuild --all` on the server's data: beside it
/// on PostgreSQL, with the data directory to itself when embedded.
async fn rebuild_all(server: TestServer) -> TestServer {
    const ARGS: [&str; 3] = ["projections", "rebuild", "--all"];
    match server.database_url().map(str::to_string) {
        Some(url) => {
            succeeded(
                Command::new(env!("CARGO_BIN_EXE_ticketflow"))
                    .args(ARGS)
                    .env("DATABASE_URL", url),
            );
            server
        }
        None => {
            server
                .restart_after(|dir| {
                    let dir: &Path = dir.expect("an embedded data directory");
                    succeeded(
                        Command::new(env!("CARGO_BIN_EXE_ticketflow"))
                            .args(ARGS)
                            .arg("--data-dir")
                            .arg(dir)
                            .env_remove("DATABASE_URL")
                            .env_remove("NATS_URL")
                            .env_remove("TICKETFLOW_DATA_DIR"),
                    );
                })
                .await
        }
    }
}

fn succeeded(command: &mut Command) {
    let out = command
        .env("RUST_LOG", "warn")
        .output()
        .expect("run ticketflow");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
