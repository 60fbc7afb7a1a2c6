//! The events feed's `types`, `since` and `until` (additions to the
//! contract's `GET /api/projects/{pid}/events`), in JSON pages and NDJSON,
//! alone and combined with each other and with the `after` cursor; a
//! `follow` ending at `until`; bad values refused naming the parameter.

use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use reqwest::StatusCode;
use serde_json::{json, Value};
use ticketflow_testkit::{setup, Setup};

/// Members, tickets, changes and comments: every kind of project event.
async fn busy_project(s: &Setup) {
    let bob = s.member("bob").await;
    for i in 0..4 {
        let ticket = s.ticket(&format!("t{i}")).await;
        let path = format!("/api/tickets/{ticket}");
        s.patch(&path, json!({ "assignee_id": bob.id, "status_id": 3 }))
            .await;
        s.post(&format!("{path}/comments"), json!({ "body": "done" }))
            .await;
    }
}

fn encode(raw: &str) -> String {
    raw.replace('+', "%2B")
}

/// The items of `query` read both ways, checked equal: JSON pages of 3
/// (paging with `after` on top of the filters) and one NDJSON stream.
async fn both_ways(s: &Setup, query: &str) -> Vec<Value> {
    let path = format!("/api/projects/{}/events?{query}", s.project_id);
    let paged = s.server.list_all(&path, &s.alice.token, 3).await;
    let resp = s
        .server
        .http
        .get(format!("{}{path}", s.server.base))
        .bearer_auth(&s.alice.token)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK, "{query}");
    let text = resp.text().await.expect("body");
    let streamed: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(paged, streamed, "{query}: pages and NDJSON agree");
    paged
}

fn position(item: &Value) -> i64 {
    item["position"].as_i64().unwrap_or(-1)
}

fn time(item: &Value) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(item["occurred_at"].as_str().unwrap_or("")).expect("a time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn types_since_and_until_select_alone_and_together() {
    let s = setup().await;
    busy_project(&s).await;
    let all = both_ways(&s, "").await;
    assert_eq!(all.len(), 3 + 4 * 4, "{all:?}");
    let pick = |keep: &dyn Fn(&Value) -> bool| -> Vec<Value> {
        all.iter().filter(|i| keep(i)).cloned().collect()
    };
    let (from, to) = (position(&all[5]), position(&all[14]));
    let (t_from, t_to) = (time(&all[5]), time(&all[14]));
    let (t_from_q, t_to_q) = (
        encode(all[5]["occurred_at"].as_str().unwrap_or("")),
        encode(all[14]["occurred_at"].as_str().unwrap_or("")),
    );
    let typed = |i: &Value| {
        ["TicketStatusChanged", "MemberAdded"].contains(&i["type"].as_str().unwrap_or(""))
    };

    let cases: Vec<(String, Vec<Value>)> = vec![
        ("types=TicketStatusChanged,MemberAdded".into(), pick(&typed)),
        (format!("since={from}"), pick(&|i| position(i) >= from)),
        (format!("until={to}"), pick(&|i| position(i) <= to)),
        (format!("since={t_from_q}"), pick(&|i| time(i) >= t_from)),
        (format!("until={t_to_q}"), pick(&|i| time(i) <= t_to)),
        (
            format!("types=TicketStatusChanged,MemberAdded&since={from}&until={t_to_q}"),
            pick(&|i| typed(i) && position(i) >= from && time(i) <= t_to),
        ),
        // `after` (exclusive) and `since` (inclusive) both apply.
        (
            format!("since={from}&after={}", position(&all[9])),
            pick(&|i| position(i) > position(&all[9])),
        ),
        (
            format!("since={to}&after={from}"),
            pick(&|i| position(i) >= to),
        ),
        (format!("since={to}&until={from}"), Vec::new()),
    ];
    for (query, expected) in cases {
        if query.contains("after=") {
            // list_all pages with its own `after`: compare one page.
            let path = format!("/api/projects/{}/events?{query}&limit=200", s.project_id);
            let page = s.get(&path).await;
            assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
            assert_eq!(page.body["items"], json!(expected), "{query}");
            continue;
        }
        assert_eq!(both_ways(&s, &query).await, expected, "{query}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follow_ends_at_until() {
    let s = setup().await;
    busy_project(&s).await;
    let all = both_ways(&s, "").await;
    let events = format!("/api/projects/{}/events", s.project_id);
    let open = |query: String| {
        s.server
            .http
            .get(format!("{}{events}?follow=true&{query}", s.server.base))
            .bearer_auth(&s.alice.token)
            .header("accept", "application/x-ndjson")
            .send()
    };
    // Already reached: the stream ends once caught up.
    let resp = open(format!("until={}", position(&all[6])))
        .await
        .expect("request");
    let text = tokio::time::timeout(Duration::from_secs(20), resp.text())
        .await
        .expect("a follow with a reached until ends")
        .expect("body");
    assert_eq!(text.lines().count(), 7);

    // A time ahead: events arriving before it stream, then the stream ends.
    let until = chrono::Utc::now() + chrono::Duration::seconds(3);
    let until_q = until.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let resp = open(format!(
        "types=TicketCreated&since={}&until={until_q}",
        position(&all[all.len() - 1]) + 1
    ))
    .await
    .expect("request");
    let body = tokio::spawn(resp.text());
    s.ticket("while following").await;
    let text = tokio::time::timeout(Duration::from_secs(20), body)
        .await
        .expect("the follow ends once until has passed")
        .expect("task")
        .expect("body");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0]["type"], "TicketCreated");
    assert!(chrono::Utc::now() > until);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_filters_are_refused_naming_them() {
    let s = setup().await;
    let events = format!("/api/projects/{}/events", s.project_id);
    for (query, field) in [
        ("types=Nope", "types"),
        ("types=", "types"),
        ("types=TicketCreated,", "types"),
        ("types=ticketcreated", "types"),
        ("since=", "since"),
        ("since=-1", "since"),
        ("since=1.5", "since"),
        ("since=2026-01-01", "since"),
        ("until=yesterday", "until"),
        ("until=99999999999999999999", "until"),
    ] {
        for accept in ["application/json", "application/x-ndjson"] {
            let reply = s
                .server
                .call(
                    reqwest::Method::GET,
                    &format!("{events}?{query}"),
                    Some(&s.alice.token),
                    None,
                    &[("accept", accept)],
                )
                .await;
            assert_eq!(
                reply.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{query}: {:?}",
                reply.body
            );
            assert_eq!(reply.error_code(), "invalid_field", "{query}");
            assert_eq!(reply.error_field(), field, "{query}");
        }
    }
}
