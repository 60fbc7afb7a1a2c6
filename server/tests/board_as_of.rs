//! The board as of a moment (`GET /api/projects/{pid}/tickets?as_of=`),
//! over real HTTP: after every command of a project's life (every kind of
//! ticket event), the board as of that command's position must be the live
//! list as it was then, with each filter and with paging; times stand for
//! positions; and the edge cases a client meets (beyond the head, before the
//! project, malformed, not a member). Board snapshots are spaced tightly
//! here, so that positions on both sides of several of them are checked.
//!
//! Run: `cargo test -p ticketflow --test board_as_of` (PostgreSQL and NATS
//! up), and with `TICKETFLOW_TEST_MODE=embedded`.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use ticketflow_testkit::{
    assert_error_in, id_of, setup_on, ticket_path, Config, Reply, Setup, TestServer, TestUser,
};
use uuid::Uuid;

/// Fewest project events between two board snapshots, for these tests.
const SNAPSHOT_EVERY: u64 = 4;

/// The filters every recorded board is compared under ("" for none).
fn filters(bob: &str, alice: &str) -> Vec<String> {
    vec![
        String::new(),
        "&status_id=1".into(),
        "&status_id=2".into(),
        "&status_id=3".into(),
        format!("&assignee_id={bob}"),
        format!("&assignee_id={alice}"),
        format!("&status_id=2&assignee_id={bob}"),
    ]
}

/// An RFC 3339 time as a query value.
fn query_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
        .replace('+', "%2B")
}

struct Board {
    s: Setup,
    bob: TestUser,
    /// Live lists recorded after each command: position → filter → items.
    recorded: Vec<(i64, HashMap<String, Value>)>,
}

impl Board {
    async fn start() -> Self {
        let config = Config {
            board_snapshot_every: SNAPSHOT_EVERY,
            ..Config::default()
        };
        let s = setup_on(TestServer::start_with(config).await).await;
        let bob = s.member("bob").await;
        Self {
            s,
            bob,
            recorded: Vec::new(),
        }
    }

    fn filters(&self) -> Vec<String> {
        filters(&self.bob.id, &self.s.alice.id)
    }

    /// GET as alice with headers.
    async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let token = Some(self.s.alice.token.as_str());
        self.s
            .server
            .call(Method::GET, path, token, None, headers)
            .await
    }

    /// The live list under `filter` once the read model has `position`.
    async fn live(&self, position: i64, filter: &str) -> Value {
        let path = format!("{}?limit=200{filter}", self.s.tickets_path());
        let at = position.to_string();
        let reply = self.get_with(&path, &[("x-min-position", &at)]).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply.body["items"].clone()
    }

    /// Records the live lists after a command that answered `reply`.
    async fn record(&mut self, reply: Reply) -> Reply {
        assert!(reply.status.is_success(), "{:?}", reply.body);
        let position = reply.position();
        let mut lists = HashMap::new();
        for filter in self.filters() {
            let live = self.live(position, &filter).await;
            lists.insert(filter, live);
        }
        self.recorded.push((position, lists));
        reply
    }

    async fn create(&mut self, body: Value) -> String {
        let reply = self.s.try_ticket(body).await;
        id_of(&self.record(reply).await.body)
    }

    async fn patch(&mut self, id: &str, body: Value) {
        let reply = self.s.patch(&ticket_path(id), body).await;
        self.record(reply).await;
    }

    async fn comment(&mut self, id: &str, body: &str) {
        let path = format!("{}/comments", ticket_path(id));
        let reply = self.s.post(&path, json!({ "body": body })).await;
        self.record(reply).await;
    }

    async fn delete(&mut self, id: &str) {
        let reply = self.s.delete(&ticket_path(id)).await;
        self.record(reply).await;
    }

    /// The board as of `as_of` under `filter`, one page of `limit`.
    async fn as_of(&self, as_of: &str, filter: &str) -> Reply {
        let path = format!("{}?as_of={as_of}&limit=200{filter}", self.s.tickets_path());
        self.s.get(&path).await
    }

    /// A project life with every kind of ticket event.
    async fn live_a_life(&mut self) {
        let (alice, bob) = (self.s.alice.id.clone(), self.bob.id.clone());
        let mut ids = Vec::new();
        for n in 0..24 {
            let body = match n % 4 {
                0 => json!({ "title": format!("Task {n}") }),
                1 => json!({ "title": format!("Bug {n}"), "assignee_id": bob, "labels": ["bug"] }),
                2 => json!({ "title": format!("Idea {n}"), "priority": "low", "status_id": 2 }),
                _ => {
                    json!({ "title": format!("Chore {n}"), "assignee_id": alice, "priority": "urgent" })
                }
            };
            ids.push(self.create(body).await);
        }
        for (n, id) in ids.iter().enumerate() {
            match n % 8 {
                0 => self.patch(id, json!({ "status_id": 2 })).await,
                1 => self.patch(id, json!({ "assignee_id": null })).await,
                2 => {
                    self.patch(id, json!({ "assignee_id": bob, "status_id": 3 }))
                        .await
                }
                3 => {
                    self.patch(id, json!({ "title": format!("Renamed {n}") }))
                        .await
                }
                4 => {
                    self.patch(id, json!({ "labels": ["a", "b"], "priority": "high" }))
                        .await
                }
                5 => self.comment(id, "@bob have a look").await,
                6 => self.patch(id, json!({ "description": "more words" })).await,
                _ => self.delete(id).await,
            }
        }
        for (n, id) in ids.iter().enumerate().filter(|(n, _)| n % 8 != 7) {
            match n % 3 {
                0 => {
                    self.patch(id, json!({ "status_id": 3, "assignee_id": alice }))
                        .await
                }
                1 => self.comment(id, "done?").await,
                _ => self.delete(id).await,
            }
        }
        self.create(json!({ "title": "Late arrival", "assignee_id": bob }))
            .await;
    }

    /// How many board snapshots of the project the store keeps.
    async fn snapshots(&self) -> Vec<i64> {
        let events = &self.s.server.backend.events;
        let project = Uuid::parse_str(&self.s.project_id).expect("project id");
        let mut positions = Vec::new();
        let mut below = i64::MAX;
        while let Some(snapshot) = events
            .board_snapshot(project, below)
            .await
            .expect("read board snapshots")
        {
            positions.push(snapshot.position);
            below = snapshot.position - 1;
        }
        positions
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_board_as_of_every_position_is_the_live_list_then() {
    let mut b = Board::start().await;
    b.live_a_life().await;
    assert!(b.recorded.len() > 60, "{} commands", b.recorded.len());

    // Oldest first: each query replays from the snapshots the last left.
    for (position, lists) in &b.recorded {
        let reply = b.as_of(&position.to_string(), "").await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        assert_eq!(reply.position(), *position);
        assert_eq!(reply.body["items"], lists[""], "as_of={position}");
        assert_eq!(reply.body["next_cursor"], Value::Null);
    }
    let snapshots = b.snapshots().await;
    assert!(snapshots.len() >= 3, "snapshots at {snapshots:?}");

    // Newest first, every filter, and paged: now from snapshots on either side.
    for (position, lists) in b.recorded.iter().rev() {
        for filter in b.filters() {
            let reply = b.as_of(&position.to_string(), &filter).await;
            assert_eq!(
                reply.body["items"], lists[&filter],
                "as_of={position}{filter}"
            );
        }
        let path = format!("{}?as_of={position}", b.s.tickets_path());
        let paged = b.s.server.list_all(&path, &b.s.alice.token, 5).await;
        assert_eq!(
            Value::from(paged),
            lists[""],
            "as_of={position}, pages of 5"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_time_stands_for_the_last_position_at_or_before_it() {
    let mut b = Board::start().await;
    b.live_a_life().await;
    let feed = format!("/api/projects/{}/events", b.s.project_id);
    let events = b.s.server.list_all(&feed, &b.s.alice.token, 200).await;
    let time = |e: &Value| e["occurred_at"].as_str().expect("occurred_at").to_string();
    for (i, event) in events.iter().enumerate().step_by(3) {
        // A command's events share its time: the time covers all of them.
        let last = events[i..]
            .iter()
            .take_while(|e| time(e) == time(event))
            .last()
            .expect("the event itself");
        let at = DateTime::parse_from_rfc3339(&time(event)).expect("an RFC 3339 time");
        let by_time = b.as_of(&query_time(at.with_timezone(&Utc)), "").await;
        let by_position = b.as_of(&last["position"].to_string(), "").await;
        assert_eq!(by_time.status, StatusCode::OK, "{:?}", by_time.body);
        assert_eq!(by_time.body, by_position.body, "as_of={}", time(event));
    }
    // After the last event: the board now; before the first: no project.
    let later = query_time(Utc::now() + chrono::Duration::days(1));
    let reply = b.as_of(&later, "").await;
    let (head, lists) = b.recorded.last().expect("a command");
    assert_eq!(reply.body["items"], lists[""]);
    assert!(reply.position() >= *head);
    let first = DateTime::parse_from_rfc3339(&time(&events[0])).expect("time");
    let before = query_time(first.with_timezone(&Utc) - chrono::Duration::microseconds(1));
    let reply = b.as_of(&before, "").await;
    assert_error_in("before the project", &reply, 404, "not_found", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_edges_answer_as_a_client_expects() {
    let mut b = Board::start().await;
    let first = b.create(json!({ "title": "First" })).await;
    let created = b.recorded[0].0;
    b.delete(&first).await;
    let (head, _) = *b.recorded.last().expect("a command");

    // The deleted ticket is on the board before its deletion, not after.
    let before = b.as_of(&created.to_string(), "").await;
    assert_eq!(before.body["items"][0]["id"], first.as_str());
    let after = b.as_of(&head.to_string(), "").await;
    assert_eq!(after.body["items"], json!([]));

    let beyond = (head + 1).to_string();
    for bad in [
        beyond.as_str(),
        "0",
        "",
        "yesterday",
        "-3",
        "1.5",
        "2026-13-01T00:00:00Z",
    ] {
        let reply = b.as_of(bad, "").await;
        assert_error_in(bad, &reply, 422, "invalid_field", Some("as_of"));
    }
    // Before this project existed (the log holds the other one's events).
    let mine = b.s.server.project(&b.s.alice, "NEWER").await;
    let path = format!("/api/projects/{}/tickets?as_of={created}", id_of(&mine));
    assert_error_in(
        "before creation",
        &b.s.get(&path).await,
        404,
        "not_found",
        None,
    );

    // Membership is checked as now, before anything else.
    let carol = b.s.server.user("carol").await;
    let path = format!("{}?as_of={created}", b.s.tickets_path());
    let reply = b.s.server.get(&path, &carol.token).await;
    assert_error_in("not a member", &reply, 403, "forbidden", None);
    // The list's own parameters are checked as without as_of.
    let reply = b.as_of(&created.to_string(), "&status_id=x").await;
    assert_error_in(
        "bad status",
        &reply,
        422,
        "invalid_field",
        Some("status_id"),
    );
}
