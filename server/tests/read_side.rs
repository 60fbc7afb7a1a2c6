//! The read side over HTTP: read-your-writes, the project event feed (JSON
//! pages, NDJSON, follow) and notifications, with the relay and projection
//! workers running over real NATS and PostgreSQL.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use ticketflow_testkit::TestServer;

use ticketflow_testkit::setup;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn x_min_position_reads_your_own_write_from_the_projection() {
    let s = setup().await;
    let created = s
        .server
        .ticket(&s.alice, &s.project_id, json!({ "title": "fresh" }))
        .await;
    let id = created.body["id"].as_str().expect("id");
    let position = created.position().to_string();
    let path = format!("/api/tickets/{id}");
    let headers = [("x-min-position", position.as_str())];
    let read = s
        .server
        .call(Method::GET, &path, Some(&s.alice.token), None, &headers)
        .await;
    assert_eq!(read.status, StatusCode::OK, "{:?}", read.body);
    assert_eq!(
        read.body, created.body,
        "the projection serves what the command returned"
    );
    assert_eq!(read.header("etag").as_deref(), Some("\"1\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_events_feed_pages_by_position_with_ticket_and_member_events() {
    let s = setup().await;
    let bob = s.member("bob").await;
    let ticket = s.ticket("one").await;
    s.patch(&format!("/api/tickets/{ticket}"), json!({ "title": "two" }))
        .await;
    let path = format!("/api/projects/{}/events", s.project_id);
    let all = s.server.list_all(&path, &bob.token, 2).await;
    let types: Vec<&str> = all
        .iter()
        .map(|e| e["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        types,
        [
            "ProjectCreated",
            "MemberAdded",
            "MemberAdded",
            "TicketCreated",
            "TicketTitleChanged"
        ]
    );
    let positions: Vec<i64> = all
        .iter()
        .map(|e| e["position"].as_i64().unwrap_or(0))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    let item = &all[3];
    for field in [
        "event_id",
        "position",
        "type",
        "schema_version",
        "ticket_id",
        "version",
        "actor",
        "occurred_at",
        "data",
    ] {
        assert!(item.get(field).is_some(), "feed item lacks {field}: {item}");
    }
    assert_eq!(item["ticket_id"], json!(ticket));
    assert_eq!(all[0]["ticket_id"], Value::Null);
    let after = format!("{path}?after={}", positions[2]);
    let rest = s.server.get(&after, &bob.token).await;
    assert_eq!(rest.body["items"].as_array().map(Vec::len), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_events_feed_is_for_members_only() {
    let s = setup().await;
    let eve = s.server.user("eve").await;
    let path = format!("/api/projects/{}/events", s.project_id);
    assert_eq!(
        s.server.get(&path, &eve.token).await.status,
        StatusCode::FORBIDDEN
    );
}

async fn ndjson_lines(server: &TestServer, path: &str, token: &str) -> Vec<Value> {
    let resp = server
        .http
        .get(format!("{}{path}", server.base))
        .bearer_auth(token)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/x-ndjson")
    );
    let text = resp.text().await.expect("body");
    text.lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ndjson_streams_everything_after_the_cursor_and_ends() {
    let s = setup().await;
    for i in 0..60 {
        s.ticket(&format!("t{i}")).await;
    }
    let path = format!("/api/projects/{}/events", s.project_id);
    let lines = ndjson_lines(&s.server, &path, &s.alice.token).await;
    assert_eq!(
        lines.len(),
        62,
        "no default limit: project events and all 60 tickets"
    );
    let cut = lines[9]["position"].as_i64().expect("position");
    let tail = ndjson_lines(
        &s.server,
        &format!("{path}?after={cut}&limit=5"),
        &s.alice.token,
    )
    .await;
    assert_eq!(tail.len(), 5);
    assert_eq!(tail[0], lines[10]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ndjson_follow_streams_new_events_as_they_are_stored() {
    let s = setup().await;
    let path = format!("/api/projects/{}/events?follow=true", s.project_id);
    let mut resp = s
        .server
        .http
        .get(format!("{}{path}", s.server.base))
        .bearer_auth(&s.alice.token)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .expect("request");
    let mut buffer = String::new();
    let mut created = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    // The two project events come first; then each ticket as it is created.
    while buffer.lines().count() < 5 {
        if created < 3 && buffer.lines().count() >= 2 + created {
            s.ticket(&format!("live {created}")).await;
            created += 1;
        }
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .expect("follow stalled");
        let chunk = chunk.expect("chunk").expect("stream still open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
    let types: Vec<String> = buffer
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("json")["type"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(
        types,
        [
            "ProjectCreated",
            "MemberAdded",
            "TicketCreated",
            "TicketCreated",
            "TicketCreated"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notifications_list_newest_first_and_read_flags_count() {
    let s = setup().await;
    let bob = s.member("bob").await;
    let ticket = s.ticket("Fix login bug").await;
    let path = format!("/api/tickets/{ticket}");
    s.patch(&path, json!({ "assignee_id": bob.id })).await;
    s.post(&format!("{path}/comments"), json!({ "body": "ping @bob" }))
        .await;

    let list = s.server.get("/api/notifications", &bob.token).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["unread_count"], 2);
    assert_eq!(list.body["next_cursor"], Value::Null);
    let items = list.body["items"].as_array().expect("items");
    let kinds: Vec<&str> = items
        .iter()
        .map(|n| n["notification_type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["mentioned", "ticket_assigned"]);
    assert_eq!(items[1]["seq"], 1);
    assert_eq!(items[1]["title"], "Ticket Assigned");
    assert_eq!(
        items[1]["message"],
        "You were assigned to PROJ-1: Fix login bug"
    );
    assert_eq!(items[1]["ticket_key"], "PROJ-1");
    assert_eq!(items[1]["read"], false);
    assert!(
        s.get("/api/notifications").await.body["items"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "the actor is never notified"
    );

    let first = items[1]["id"].as_str().expect("id");
    let read = format!("/api/notifications/{first}/read");
    assert_eq!(
        s.server.post(&read, &bob.token, json!({})).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.server.post(&read, &bob.token, json!({})).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(s.post(&read, json!({})).await.status, StatusCode::NOT_FOUND);
    let unread = s
        .server
        .get("/api/notifications?unread_only=true", &bob.token)
        .await;
    assert_eq!(unread.body["unread_count"], 1);
    assert_eq!(unread.body["items"].as_array().map(Vec::len), Some(1));

    let all = s
        .server
        .post("/api/notifications/read-all", &bob.token, json!({}))
        .await;
    assert_eq!(all.status, StatusCode::NO_CONTENT);
    assert_eq!(
        s.server.get("/api/notifications", &bob.token).await.body["unread_count"],
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notifications_page_older_with_the_cursor() {
    let s = setup().await;
    let bob = s.member("bob").await;
    for i in 0..5 {
        let ticket = s.ticket(&format!("t{i}")).await;
        s.patch(
            &format!("/api/tickets/{ticket}"),
            json!({ "assignee_id": bob.id }),
        )
        .await;
    }
    let seqs: Vec<i64> = s
        .server
        .list_all("/api/notifications", &bob.token, 2)
        .await
        .iter()
        .map(|n| n["seq"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(seqs, [5, 4, 3, 2, 1]);
}
