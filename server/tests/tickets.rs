//! The contract's Tickets section and its precise rules, over real HTTP:
//! creation and validation, one event per changed field, no-op PATCHes,
//! If-Match, deletion, comments, `as_of`, listing, and `X-Min-Position`.
//!
//! Run: `cargo test -p ticketflow --test tickets` (PostgreSQL must be up).

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use ticketflow_testkit::Reply;
use ticketflow_testkit::{
    assert_error, etag, event_types, id_of, keys, setup, sorted, ticket_path, versions,
};

const TICKET_KEYS: [&str; 14] = [
    "id",
    "project_id",
    "key",
    "number",
    "title",
    "description",
    "priority",
    "status",
    "assignee",
    "reporter",
    "labels",
    "created_at",
    "updated_at",
    "version",
];
const COMMENT_KEYS: [&str; 5] = ["id", "ticket_id", "author", "body", "created_at"];

fn comments_path(ticket_id: &str) -> String {
    format!("/api/tickets/{ticket_id}/comments")
}

/// An RFC 3339 time as a query value.
fn query_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
        .replace('+', "%2B")
}

fn time_of(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .expect("an RFC 3339 time")
        .with_timezone(&Utc)
}

/// Asserts a successful ticket command or read: status, ETag = version.
#[track_caller]
fn assert_ticket(reply: &Reply, status: StatusCode, version: u64) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    assert_eq!(reply.body["version"], version, "{:?}", reply.body);
    assert_eq!(reply.header("etag"), Some(etag(version)));
}

fn key_list(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|t| t["key"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_returns_201_with_the_full_ticket_json() {
    let s = setup().await;
    let reply = s.try_ticket(json!({ "title": "Fix login" })).await;
    assert_ticket(&reply, StatusCode::CREATED, 1);
    let t = &reply.body;
    assert_eq!(keys(t), sorted(&TICKET_KEYS));
    assert!(uuid::Uuid::parse_str(&id_of(t)).is_ok());
    assert_eq!(t["project_id"], s.project_id.as_str());
    assert_eq!(t["key"], "PROJ-1");
    assert_eq!(t["number"], 1);
    assert_eq!(t["title"], "Fix login");
    assert_eq!(t["description"], "");
    assert_eq!(t["priority"], "medium");
    assert_eq!(
        t["status"],
        json!({ "id": 1, "name": "Open", "color": "#1890ff" })
    );
    assert_eq!(t["assignee"], json!(null));
    assert_eq!(
        t["reporter"],
        json!({ "id": s.alice.id, "username": "alice" })
    );
    assert_eq!(t["labels"], json!([]));
    assert_eq!(time_of(&t["created_at"]), time_of(&t["updated_at"]));
    let history = s.server.history(&s.alice, &id_of(t)).await;
    assert_eq!(reply.position(), history[0]["position"].as_i64().unwrap());

    let read = s.get(&ticket_path(&id_of(t))).await;
    assert_ticket(&read, StatusCode::OK, 1);
    assert_eq!(&read.body, t);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_count_per_project_from_1() {
    let s = setup().await;
    let other = s.server.project(&s.alice, "OTHER").await;
    for n in 1..=3 {
        let reply = s.try_ticket(json!({ "title": format!("t{n}") })).await;
        assert_eq!(reply.body["key"], format!("PROJ-{n}"));
        assert_eq!(reply.body["number"], n);
    }
    let path = format!("/api/projects/{}/tickets", id_of(&other));
    let reply = s.post(&path, json!({ "title": "x" })).await;
    assert_eq!(reply.body["key"], "OTHER-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_takes_every_optional_field() {
    let s = setup().await;
    let bob = s.member("bob").await;
    let body = json!({
        "title": "Full", "description": "Some words", "priority": "urgent",
        "assignee_id": bob.id, "labels": ["ui", "bug"], "status_id": 2,
    });
    let reply = s.try_ticket(body).await;
    assert_ticket(&reply, StatusCode::CREATED, 1);
    let t = &reply.body;
    assert_eq!(t["description"], "Some words");
    assert_eq!(t["priority"], "urgent");
    assert_eq!(t["assignee"], json!({ "id": bob.id, "username": "bob" }));
    assert_eq!(t["labels"], json!(["ui", "bug"]));
    assert_eq!(
        t["status"],
        json!({ "id": 2, "name": "In Progress", "color": "#faad14" })
    );
    // The assignee is part of TicketCreated: no separate TicketAssigned.
    let history = s.server.history(&s.alice, &id_of(t)).await;
    assert_eq!(event_types(&history), ["TicketCreated"]);
    assert_eq!(history[0]["data"]["assignee"]["id"], bob.id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_priority_is_accepted_and_nothing_else() {
    let s = setup().await;
    for priority in ["low", "medium", "high", "urgent"] {
        let reply = s
            .try_ticket(json!({ "title": "p", "priority": priority }))
            .await;
        assert_eq!(reply.body["priority"], priority);
    }
    for bad in [json!("critical"), json!("LOW"), json!(1)] {
        let reply = s.try_ticket(json!({ "title": "p", "priority": bad })).await;
        assert_error(&reply, 422, "invalid_field", Some("priority"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_status_id_is_422() {
    let s = setup().await;
    for bad in [json!(0), json!(4), json!(99), json!("2")] {
        let reply = s
            .try_ticket(json!({ "title": "t", "status_id": bad }))
            .await;
        assert_error(&reply, 422, "invalid_field", Some("status_id"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn assignee_must_be_a_project_member() {
    let s = setup().await;
    let outsider = s.server.user("outsider").await;
    let unknown = uuid::Uuid::new_v4().to_string();
    for bad in [outsider.id.as_str(), unknown.as_str(), "not-a-uuid"] {
        let reply = s
            .try_ticket(json!({ "title": "t", "assignee_id": bad }))
            .await;
        assert_error(&reply, 422, "invalid_field", Some("assignee_id"));
    }
    let tickets = s
        .server
        .list_all(&s.tickets_path(), &s.alice.token, 50)
        .await;
    assert!(tickets.is_empty(), "a refused create stores nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn title_is_1_to_200_characters_and_not_blank() {
    let s = setup().await;
    for bad in [String::new(), "   ".into(), "\t\n ".into(), "t".repeat(201)] {
        let reply = s.try_ticket(json!({ "title": bad })).await;
        assert_error(&reply, 422, "invalid_field", Some("title"));
    }
    for good in ["t".repeat(200), "é".repeat(200), " x ".into()] {
        let reply = s.try_ticket(json!({ "title": good })).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        assert_eq!(reply.body["title"], good.as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn description_is_at_most_20000_characters() {
    let s = setup().await;
    let reply = s
        .try_ticket(json!({ "title": "t", "description": "d".repeat(20_001) }))
        .await;
    assert_error(&reply, 422, "invalid_field", Some("description"));
    let reply = s
        .try_ticket(json!({ "title": "t", "description": "é".repeat(20_000) }))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn labels_are_deduplicated_in_order_and_limited() {
    let s = setup().await;
    let reply = s
        .try_ticket(json!({ "title": "t", "labels": ["b", "a", "b", "c", "a"] }))
        .await;
    assert_eq!(reply.body["labels"], json!(["b", "a", "c"]));

    let twenty: Vec<String> = (0..20).map(|i| format!("l{i}")).collect();
    let reply = s
        .try_ticket(json!({ "title": "t", "labels": twenty }))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    let longest = "é".repeat(50);
    let reply = s
        .try_ticket(json!({ "title": "t", "labels": [longest] }))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);

    let twenty_one: Vec<String> = (0..21).map(|i| format!("l{i}")).collect();
    for bad in [
        json!(twenty_one),
        json!([""]),
        json!(["l".repeat(51)]),
        json!("ui"),
        json!([1]),
    ] {
        let reply = s.try_ticket(json!({ "title": "t", "labels": bad })).await;
        assert_error(&reply, 422, "invalid_field", Some("labels"));
    }
    // The same rules on PATCH.
    let id = s.ticket("p").await;
    let reply = s
        .patch(&ticket_path(&id), json!({ "labels": ["x", "y", "x"] }))
        .await;
    assert_eq!(reply.body["labels"], json!(["x", "y"]));
    let reply = s.patch(&ticket_path(&id), json!({ "labels": [""] })).await;
    assert_error(&reply, 422, "invalid_field", Some("labels"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_patched_field_becomes_its_own_event() {
    let s = setup().await;
    let bob = s.member("bob").await;
    let id = s.ticket("t").await;
    let changes = [
        (json!({ "title": "New title" }), "TicketTitleChanged"),
        (
            json!({ "description": "New text" }),
            "TicketDescriptionChanged",
        ),
        (json!({ "priority": "high" }), "TicketPriorityChanged"),
        (json!({ "labels": ["a"] }), "TicketLabelsChanged"),
        (json!({ "status_id": 3 }), "TicketStatusChanged"),
        (json!({ "assignee_id": bob.id }), "TicketAssigned"),
        (json!({ "assignee_id": null }), "TicketUnassigned"),
    ];
    for (version, (body, event_type)) in (2..).zip(changes) {
        let reply = s.patch(&ticket_path(&id), body).await;
        assert_ticket(&reply, StatusCode::OK, version);
        let history = s.server.history(&s.alice, &id).await;
        let last = history.last().unwrap();
        assert_eq!(last["type"], event_type);
        assert_eq!(last["version"], version);
        assert_eq!(reply.position(), last["position"].as_i64().unwrap());
        assert_eq!(
            time_of(&reply.body["updated_at"]),
            time_of(&last["occurred_at"])
        );
    }
    let t = s.get(&ticket_path(&id)).await.body;
    assert_eq!(t["title"], "New title");
    assert_eq!(t["description"], "New text");
    assert_eq!(t["priority"], "high");
    assert_eq!(t["labels"], json!(["a"]));
    assert_eq!(t["status"]["name"], "Done");
    assert_eq!(t["assignee"], json!(null));
    let history = s.server.history(&s.alice, &id).await;
    assert_eq!(versions(&history), (1..=8).collect::<Vec<u64>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn history_items_have_the_contract_shape() {
    let s = setup().await;
    let id = s.ticket("t").await;
    let history = s.server.history(&s.alice, &id).await;
    let item = &history[0];
    for key in [
        "event_id",
        "position",
        "version",
        "type",
        "actor",
        "occurred_at",
        "data",
    ] {
        assert!(item.get(key).is_some(), "history item lacks {key}: {item}");
    }
    assert_eq!(
        item["actor"],
        json!({ "id": s.alice.id, "username": "alice" })
    );
    assert!(item["data"].is_object());
    assert!(
        item["schema_version"].is_u64(),
        "every event carries schema_version"
    );
    let page = s.get(&format!("/api/tickets/{id}/history")).await;
    assert_eq!(keys(&page.body), sorted(&["items", "next_cursor"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn patch_of_two_fields_appends_two_events() {
    let s = setup().await;
    let id = s.ticket("t").await;
    let body = json!({ "title": "Both", "priority": "low" });
    let reply = s.patch(&ticket_path(&id), body).await;
    assert_ticket(&reply, StatusCode::OK, 3);
    assert_eq!(reply.body["title"], "Both");
    assert_eq!(reply.body["priority"], "low");
    let history = s.server.history(&s.alice, &id).await;
    let mut types = event_types(&history[1..]);
    types.sort();
    assert_eq!(types, ["TicketPriorityChanged", "TicketTitleChanged"]);
    assert_eq!(versions(&history), [1, 2, 3]);
    assert_eq!(reply.position(), history[2]["position"].as_i64().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn patch_that_changes_nothing_appends_nothing() {
    let s = setup().await;
    let id = s.ticket("t").await;
    let comment = s.post(&comments_path(&id), json!({ "body": "c" })).await;
    let last_position = comment.position();
    let current = s.get(&ticket_path(&id)).await.body;
    let same = json!({
        "title": "t", "description": "", "priority": "medium", "labels": [],
        "status_id": 1, "assignee_id": null,
    });
    for body in [json!({}), same] {
        let reply = s.patch(&ticket_path(&id), body).await;
        assert_ticket(&reply, StatusCode::OK, 2);
        assert_eq!(reply.body, current);
        assert_eq!(reply.position(), last_position);
    }
    assert_eq!(s.server.history(&s.alice, &id).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn null_assignee_unassigns() {
    let s = setup().await;
    let bob = s.member("bob").await;
    let reply = s
        .try_ticket(json!({ "title": "t", "assignee_id": bob.id }))
        .await;
    let id = id_of(&reply.body);
    let reply = s
        .patch(&ticket_path(&id), json!({ "assignee_id": null }))
        .await;
    assert_ticket(&reply, StatusCode::OK, 2);
    assert_eq!(reply.body["assignee"], json!(null));
    let history = s.server.history(&s.alice, &id).await;
    assert_eq!(event_types(&history), ["TicketCreated", "TicketUnassigned"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn null_for_a_field_that_cannot_be_cleared_is_422() {
    let s = setup().await;
    let id = s.ticket("t").await;
    for field in ["title", "description", "priority", "labels", "status_id"] {
        let reply = s.patch(&ticket_path(&id), json!({ field: null })).await;
        assert_error(&reply, 422, "invalid_field", Some(field));
    }
    assert_eq!(s.server.history(&s.alice, &id).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_patch_is_422_and_appends_nothing() {
    let s = setup().await;
    let outsider = s.server.user("outsider").await;
    let id = s.ticket("t").await;
    let twenty_one: Vec<String> = (0..21).map(|i| format!("l{i}")).collect();
    let cases = [
        (json!({ "title": " " }), "title"),
        (json!({ "title": "x".repeat(201) }), "title"),
        (json!({ "description": "d".repeat(20_001) }), "description"),
        (json!({ "priority": "critical" }), "priority"),
        (json!({ "status_id": 9 }), "status_id"),
        (json!({ "assignee_id": outsider.id }), "assignee_id"),
        (json!({ "labels": twenty_one }), "labels"),
        // A valid change beside an invalid one is not applied either.
        (json!({ "title": "ok", "status_id": 9 }), "status_id"),
        (json!({ "colour": "red" }), "colour"),
    ];
    for (body, field) in cases {
        let reply = s.patch(&ticket_path(&id), body).await;
        assert_error(&reply, 422, "invalid_field", Some(field));
    }
    assert_eq!(s.server.history(&s.alice, &id).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stale_if_match_is_409_version_conflict() {
    let s = setup().await;
    let id = s.ticket("t").await;
    let path = ticket_path(&id);
    s.patch(&path, json!({ "title": "v2" })).await;
    let stale = s
        .server
        .call(
            Method::PATCH,
            &path,
            Some(&s.alice.token),
            Some(json!({ "title": "lost" })),
            &[("if-match", &etag(1))],
        )
        .await;
    assert_error(&stale, 409, "version_conflict", None);
    assert_eq!(stale.body["error"]["current_version"], 2);

    let fresh = s
        .server
        .call(
            Method::PATCH,
            &path,
            Some(&s.alice.token),
            Some(json!({ "title": "v3" })),
            &[("if-match", &etag(2))],
        )
        .await;
    assert_ticket(&fresh, StatusCode::OK, 3);
    assert_eq!(fresh.body["title"], "v3");

    let stale_delete = s
        .server
        .call(
            Method::DELETE,
            &path,
            Some(&s.alice.token),
            None,
            &[("if-match", &etag(2))],
        )
        .await;
    assert_error(&stale_delete, 409, "version_conflict", None);
    assert_eq!(stale_delete.body["error"]["current_version"], 3);
    assert_eq!(s.server.history(&s.alice, &id).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn delete_is_204_then_the_ticket_is_gone_but_its_history_stays() {
    let s = setup().await;
    let id = s.ticket("t").await;
    let keep = s.ticket("kept").await;
    let path = ticket_path(&id);
    let reply = s.delete(&path).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(reply.body, json!(null));
    let position = reply.position();

    let token = &s.alice.token;
    assert_error(&s.server.get(&path, token).await, 404, "not_found", None);
    assert_error(&s.server.delete(&path, token).await, 404, "not_found", None);
    let patch = s.server.patch(&path, token, json!({ "title": "x" })).await;
    assert_error(&patch, 404, "not_found", None);
    let empty_patch = s.server.patch(&path, token, json!({})).await;
    assert_error(&empty_patch, 404, "not_found", None);
    let comment = s
        .server
        .post(&comments_path(&id), token, json!({ "body": "x" }))
        .await;
    assert_error(&comment, 404, "not_found", None);
    assert_error(
        &s.server.get(&comments_path(&id), token).await,
        404,
        "not_found",
        None,
    );

    let history = s.server.history(&s.alice, &id).await;
    assert_eq!(event_types(&history), ["TicketCreated", "TicketDeleted"]);
    assert_eq!(history[1]["position"].as_i64().unwrap(), position);
    let then = s.server.get(&format!("{path}?as_of=1"), token).await;
    assert_ticket(&then, StatusCode::OK, 1);
    assert_eq!(then.body["title"], "t");

    let listed = s.server.list_all(&s.tickets_path(), token, 50).await;
    assert_eq!(listed.iter().map(id_of).collect::<Vec<_>>(), [keep]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_or_non_uuid_ticket_is_404() {
    let s = setup().await;
    let unknown = uuid::Uuid::new_v4().to_string();
    let token = Some(s.alice.token.as_str());
    for id in [unknown.as_str(), "not-a-uuid"] {
        let requests = [
            (Method::GET, ticket_path(id), None),
            (
                Method::PATCH,
                ticket_path(id),
                Some(json!({ "title": "x" })),
            ),
            (Method::DELETE, ticket_path(id), None),
            (Method::GET, comments_path(id), None),
            (
                Method::POST,
                comments_path(id),
                Some(json!({ "body": "x" })),
            ),
            (Method::GET, format!("/api/tickets/{id}/history"), None),
            (Method::GET, format!("/api/tickets/{id}?as_of=1"), None),
        ];
        for (method, path, body) in requests {
            let reply = s.server.call(method.clone(), &path, token, body, &[]).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} {path}");
            assert_eq!(reply.error_code(), "not_found", "{method} {path}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn comment_returns_201_and_is_a_ticket_event() {
    let s = setup().await;
    let bob = s.member("bob").await;
    let id = s.ticket("t").await;
    let reply = s
        .server
        .post(
            &comments_path(&id),
            &bob.token,
            json!({ "body": "Looks good @alice" }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert_eq!(keys(&reply.body), sorted(&COMMENT_KEYS));
    assert!(uuid::Uuid::parse_str(&id_of(&reply.body)).is_ok());
    assert_eq!(reply.body["ticket_id"], id.as_str());
    assert_eq!(
        reply.body["author"],
        json!({ "id": bob.id, "username": "bob" })
    );
    assert_eq!(reply.body["body"], "Looks good @alice");
    assert_eq!(reply.header("etag"), Some(etag(2)));

    let ticket = s.get(&ticket_path(&id)).await;
    assert_ticket(&ticket, StatusCode::OK, 2);
    let history = s.server.history(&s.alice, &id).await;
    assert_eq!(event_types(&history), ["TicketCreated", "CommentAdded"]);
    assert_eq!(history[1]["version"], 2);
    assert_eq!(history[1]["actor"]["id"], bob.id.as_str());
    assert_eq!(reply.position(), history[1]["position"].as_i64().unwrap());

    let list = s.get(&comments_path(&id)).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(
        list.body,
        json!({ "items": [reply.body], "next_cursor": null })
    );
}

async fn comment_if_match(s: &ticketflow_testkit::Setup, id: &str, version: u64) -> Reply {
    let body = json!({ "body": "hi" });
    let tag = etag(version);
    s.server
        .call(
            Method::POST,
            &comments_path(id),
            Some(&s.alice.token),
            Some(body),
            &[("if-match", &tag)],
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn comment_honours_if_match() {
    let s = setup().await;
    let id = s.ticket("t").await;
    s.patch(&ticket_path(&id), json!({ "title": "v2" })).await;
    let stale = comment_if_match(&s, &id, 1).await;
    assert_error(&stale, 409, "version_conflict", None);
    assert_eq!(stale.body["error"]["current_version"], 2);
    let fresh = comment_if_match(&s, &id, 2).await;
    assert_eq!(fresh.status, StatusCode::CREATED, "{:?}", fresh.body);
    assert_eq!(fresh.header("etag"), Some(etag(3)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn comment_body_is_1_to_10000_characters() {
    let s = setup().await;
    let id = s.ticket("t").await;
    for bad in [json!(""), json!("b".repeat(10_001)), json!(null), json!(5)] {
        let reply = s.post(&comments_path(&id), json!({ "body": bad })).await;
        assert_error(&reply, 422, "invalid_field", Some("body"));
    }
    let reply = s
        .post(&comments_path(&id), json!({ "body": "é".repeat(10_000) }))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert_eq!(s.server.history(&s.alice, &id).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn comments_list_in_order_and_pages() {
    let s = setup().await;
    let id = s.ticket("t").await;
    let mut posted = Vec::new();
    for n in 0..3 {
        let reply = s
            .post(&comments_path(&id), json!({ "body": format!("c{n}") }))
            .await;
        posted.push(reply.body);
        // A field change between comments is not a comment.
        s.patch(&ticket_path(&id), json!({ "title": format!("t{n}") }))
            .await;
    }
    let listed = s
        .server
        .list_all(&comments_path(&id), &s.alice.token, 2)
        .await;
    assert_eq!(listed, posted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn as_of_a_version_shows_the_ticket_then() {
    let s = setup().await;
    let id = s.ticket("first").await;
    let path = ticket_path(&id);
    s.patch(&path, json!({ "title": "second" })).await;
    s.patch(&path, json!({ "priority": "high" })).await;
    for (version, title, priority) in [
        (1, "first", "medium"),
        (2, "second", "medium"),
        (3, "second", "high"),
    ] {
        let reply = s.get(&format!("{path}?as_of={version}")).await;
        assert_ticket(&reply, StatusCode::OK, version);
        assert_eq!(reply.body["title"], title);
        assert_eq!(reply.body["priority"], priority);
    }
    for bad in ["4", "1000", "0", "-1", "yesterday"] {
        let reply = s.get(&format!("{path}?as_of={bad}")).await;
        assert_error(&reply, 422, "invalid_field", Some("as_of"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn as_of_a_time_is_inclusive_and_404_before_creation() {
    let s = setup().await;
    let id = s.ticket("first").await;
    let path = ticket_path(&id);
    let second = s.patch(&path, json!({ "title": "second" })).await;
    let history = s.server.history(&s.alice, &id).await;
    let created = time_of(&history[0]["occurred_at"]);
    let changed = time_of(&history[1]["occurred_at"]);
    assert_eq!(changed, time_of(&second.body["updated_at"]));

    let at = |t: DateTime<Utc>| format!("{path}?as_of={}", query_time(t));
    let reply = s.get(&at(created)).await;
    assert_ticket(&reply, StatusCode::OK, 1);
    assert_eq!(reply.body["title"], "first");
    let reply = s.get(&at(changed)).await;
    assert_ticket(&reply, StatusCode::OK, 2);
    assert_eq!(reply.body["title"], "second");
    if changed - created > Duration::microseconds(1) {
        let between = s.get(&at(changed - Duration::microseconds(1))).await;
        assert_ticket(&between, StatusCode::OK, 1);
    }
    let later = s.get(&at(changed + Duration::days(1))).await;
    assert_ticket(&later, StatusCode::OK, 2);
    let offset = (changed + Duration::hours(2)).to_rfc3339_opts(SecondsFormat::Micros, false);
    let offset = offset.replace("+00:00", "%2B02:00");
    let same_instant = s.get(&format!("{path}?as_of={offset}")).await;
    assert_ticket(&same_instant, StatusCode::OK, 2);

    let before = s.get(&at(created - Duration::microseconds(1))).await;
    assert_error(&before, 404, "not_found", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_filters_by_status_and_assignee() {
    let s = setup().await;
    let bob = s.member("bob").await;
    let bodies = [
        json!({ "title": "open" }),
        json!({ "title": "doing", "status_id": 2 }),
        json!({ "title": "doing-bob", "status_id": 2, "assignee_id": bob.id }),
        json!({ "title": "open-bob", "assignee_id": bob.id }),
    ];
    for body in bodies {
        s.try_ticket(body).await;
    }
    // A later status change counts, not the status at creation.
    let first = s
        .server
        .list_all(&s.tickets_path(), &s.alice.token, 50)
        .await;
    s.patch(&ticket_path(&id_of(&first[0])), json!({ "status_id": 3 }))
        .await;

    let base = s.tickets_path();
    let cases = [
        (format!("{base}?status_id=2"), vec!["PROJ-2", "PROJ-3"]),
        (format!("{base}?status_id=3"), vec!["PROJ-1"]),
        (format!("{base}?status_id=1"), vec!["PROJ-4"]),
        (
            format!("{base}?assignee_id={}", bob.id),
            vec!["PROJ-3", "PROJ-4"],
        ),
        (
            format!("{base}?status_id=2&assignee_id={}", bob.id),
            vec!["PROJ-3"],
        ),
        (format!("{base}?assignee_id={}", s.alice.id), vec![]),
    ];
    for (path, expected) in cases {
        let items = s.server.list_all(&path, &s.alice.token, 1).await;
        assert_eq!(key_list(&items), expected, "{path}");
    }
    for query in ["status_id=abc", "assignee_id=not-a-uuid"] {
        let reply = s.get(&format!("{base}?{query}")).await;
        let field = query.split('=').next().unwrap();
        assert_error(&reply, 422, "invalid_field", Some(field));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_returns_full_tickets_and_pages_with_an_exclusive_cursor() {
    let s = setup().await;
    for n in 1..=5 {
        s.try_ticket(json!({ "title": format!("t{n}") })).await;
    }
    let first = s.get(&format!("{}?limit=2", s.tickets_path())).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(keys(&first.body), sorted(&["items", "next_cursor"]));
    assert_eq!(keys(&first.body["items"][0]), sorted(&TICKET_KEYS));
    let cursor = first.body["next_cursor"].as_str().expect("a cursor");
    let second = s
        .get(&format!("{}?limit=2&after={cursor}", s.tickets_path()))
        .await;
    assert_eq!(
        key_list(second.body["items"].as_array().unwrap()),
        ["PROJ-3", "PROJ-4"]
    );

    let all = s
        .server
        .list_all(&s.tickets_path(), &s.alice.token, 2)
        .await;
    assert_eq!(
        key_list(&all),
        ["PROJ-1", "PROJ-2", "PROJ-3", "PROJ-4", "PROJ-5"]
    );
    let too_many = s.get(&format!("{}?limit=201", s.tickets_path())).await;
    assert_error(&too_many, 422, "invalid_field", Some("limit"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_limit_defaults_to_50() {
    let s = setup().await;
    let creates = (0..51).map(|n| s.try_ticket(json!({ "title": format!("t{n}") })));
    for reply in futures::future::join_all(creates).await {
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    }
    let page = s.get(&s.tickets_path()).await;
    assert_eq!(page.body["items"].as_array().unwrap().len(), 50);
    assert!(page.body["next_cursor"].is_string());
    let page = s.get(&format!("{}?limit=200", s.tickets_path())).await;
    assert_eq!(page.body["items"].as_array().unwrap().len(), 51);
    assert_eq!(page.body["next_cursor"], json!(null));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn x_min_position_that_was_reached_reads_normally() {
    let s = setup().await;
    let reply = s.try_ticket(json!({ "title": "t" })).await;
    let id = id_of(&reply.body);
    let position = reply.position().to_string();
    let header = [("x-min-position", position.as_str())];
    let reads = [
        ticket_path(&id),
        format!("/api/tickets/{id}/history"),
        comments_path(&id),
        s.tickets_path(),
        format!("/api/projects/{}", s.project_id),
        format!("/api/projects/{}/members", s.project_id),
        "/api/projects".to_string(),
        "/api/me".to_string(),
    ];
    for path in reads {
        let read = s
            .server
            .call(Method::GET, &path, Some(&s.alice.token), None, &header)
            .await;
        assert_eq!(read.status, StatusCode::OK, "{path}: {:?}", read.body);
    }
    let read = s
        .server
        .call(
            Method::GET,
            &ticket_path(&id),
            Some(&s.alice.token),
            None,
            &header,
        )
        .await;
    assert_eq!(read.body, reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn x_min_position_that_is_not_an_integer_is_400() {
    let s = setup().await;
    for bad in ["abc", "1.5", "", "12abc"] {
        let reply = s
            .server
            .call(
                Method::GET,
                "/api/projects",
                Some(&s.alice.token),
                None,
                &[("x-min-position", bad)],
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{bad:?}: {:?}",
            reply.body
        );
        assert!(reply.body["error"]["code"].is_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn x_min_position_never_reached_is_503_projection_lagging_after_5_s() {
    let s = setup().await;
    let reply = s.try_ticket(json!({ "title": "t" })).await;
    let wanted = (reply.position() + 1_000_000).to_string();
    let started = std::time::Instant::now();
    let read = s
        .server
        .call(
            Method::GET,
            &ticket_path(&id_of(&reply.body)),
            Some(&s.alice.token),
            None,
            &[("x-min-position", &wanted)],
        )
        .await;
    let waited = started.elapsed();
    assert_error(&read, 503, "projection_lagging", None);
    let current = read.body["error"]["current_position"]
        .as_i64()
        .expect("current_position inside error");
    assert!(current >= reply.position(), "{current}");
    assert!(waited >= std::time::Duration::from_secs(4), "{waited:?}");
    assert!(
        waited <= std::time::Duration::from_secs(8),
        "bounded: {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_of_deleted_tickets_are_never_reused() {
    let s = setup().await;
    let first = s.ticket("one").await;
    s.delete(&ticket_path(&first)).await;
    let reply = s.try_ticket(json!({ "title": "two" })).await;
    assert_eq!(reply.body["key"], "PROJ-2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_ticket_list_refuses_a_limit_above_200() {
    let s = setup().await;
    let id = s.ticket("t").await;
    for path in [
        s.tickets_path(),
        comments_path(&id),
        format!("/api/tickets/{id}/history"),
    ] {
        let ok = s.get(&format!("{path}?limit=200")).await;
        assert_eq!(ok.status, StatusCode::OK, "{path}");
        let reply = s.get(&format!("{path}?limit=201")).await;
        assert_error(&reply, 422, "invalid_field", Some("limit"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stale_if_match_refuses_even_a_patch_that_changes_nothing() {
    let s = setup().await;
    let id = s.ticket("t").await;
    s.patch(&ticket_path(&id), json!({ "title": "v2" })).await;
    let reply = s
        .server
        .call(
            Method::PATCH,
            &ticket_path(&id),
            Some(&s.alice.token),
            Some(json!({})),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_error(&reply, 409, "version_conflict", None);
    assert_eq!(reply.body["error"]["current_version"], 2);
}
