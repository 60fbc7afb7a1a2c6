//! Optimistic concurrency over real HTTP: concurrent writers never lose an
//! update, If-Match lets exactly one of them win, versions stay contiguous,
//! and ticket keys stay gap-free under concurrent creation.
//!
//! Run: `cargo test -p ticketflow --test concurrency` (PostgreSQL must be up).

use std::collections::BTreeSet;

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::json;
use ticketflow_testkit::{etag, event_types, id_of, setup, ticket_path, versions};

const WRITERS: u64 = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_patches_with_one_if_match_let_exactly_one_win() {
    let s = setup().await;
    let id = s.ticket("t").await;
    let path = ticket_path(&id);
    let tag = etag(1);
    let if_match = [("if-match", tag.as_str())];
    let patches = (0..WRITERS).map(|i| {
        let body = json!({ "title": format!("writer {i}") });
        s.server.call(
            Method::PATCH,
            &path,
            Some(&s.alice.token),
            Some(body),
            &if_match,
        )
    });
    let replies = join_all(patches).await;

    let winners: Vec<_> = replies
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one writer wins");
    for loser in replies.iter().filter(|r| r.status != StatusCode::OK) {
        assert_eq!(loser.status, StatusCode::CONFLICT, "{:?}", loser.body);
        assert_eq!(loser.error_code(), "version_conflict");
        assert_eq!(loser.body["error"]["current_version"], 2);
    }
    let history = s.server.history(&s.alice, &id).await;
    assert_eq!(versions(&history), [1, 2]);
    let ticket = s.get(&path).await;
    assert_eq!(ticket.body["title"], winners[0].body["title"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_patches_without_if_match_all_land() {
    let s = setup().await;
    let id = s.ticket("t").await;
    let path = ticket_path(&id);
    let patches = (0..WRITERS).map(|i| s.patch(&path, json!({ "title": format!("writer {i}") })));
    let replies = join_all(patches).await;
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    }
    // Each response is the state its own command produced.
    let produced: BTreeSet<u64> = replies
        .iter()
        .map(|r| r.body["version"].as_u64().unwrap())
        .collect();
    assert_eq!(produced, (2..=WRITERS + 1).collect());

    let ticket = s.get(&path).await;
    assert_eq!(ticket.body["version"], WRITERS + 1);
    let history = s.server.history(&s.alice, &id).await;
    assert_eq!(versions(&history), (1..=WRITERS + 1).collect::<Vec<_>>());
    let titles: BTreeSet<String> = history[1..]
        .iter()
        .map(|e| e["data"]["title"].as_str().unwrap().to_string())
        .collect();
    let sent: BTreeSet<String> = (0..WRITERS).map(|i| format!("writer {i}")).collect();
    assert_eq!(titles, sent, "no update lost");
    // The history pages like every list: 50 by default.
    let first_page = s.get(&format!("{path}/history")).await;
    assert_eq!(first_page.body["items"].as_array().unwrap().len(), 50);
    assert!(first_page.body["next_cursor"].is_string());
    let positions: Vec<i64> = history
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn comments_and_field_changes_interleave_without_loss() {
    let s = setup().await;
    let id = s.ticket("t").await;
    let path = ticket_path(&id);
    let comments = format!("{path}/comments");
    let writes = (0..WRITERS).map(|i| {
        let (method, target, body) = if i % 2 == 0 {
            (Method::POST, &comments, json!({ "body": format!("c{i}") }))
        } else {
            (
                Method::PATCH,
                &path,
                json!({ "description": format!("d{i}") }),
            )
        };
        s.server
            .call(method, target, Some(&s.alice.token), Some(body), &[])
    });
    for reply in join_all(writes).await {
        assert!(reply.status.is_success(), "{:?}", reply.body);
    }
    let history = s.server.history(&s.alice, &id).await;
    assert_eq!(versions(&history), (1..=WRITERS + 1).collect::<Vec<_>>());
    let types = event_types(&history);
    let count = |t: &str| types.iter().filter(|x| *x == t).count() as u64;
    assert_eq!(count("CommentAdded"), WRITERS / 2);
    assert_eq!(count("TicketDescriptionChanged"), WRITERS / 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_creates_get_keys_1_to_50() {
    let s = setup().await;
    let creates = (0..WRITERS).map(|i| s.try_ticket(json!({ "title": format!("t{i}") })));
    let replies = join_all(creates).await;
    let mut numbers = Vec::new();
    for reply in &replies {
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        let number = reply.body["number"].as_u64().unwrap();
        assert_eq!(reply.body["key"], format!("PROJ-{number}"));
        numbers.push(number);
    }
    numbers.sort();
    assert_eq!(
        numbers,
        (1..=WRITERS).collect::<Vec<_>>(),
        "no gap, no repeat"
    );

    let listed = s
        .server
        .list_all(&s.tickets_path(), &s.alice.token, 200)
        .await;
    let ids: BTreeSet<String> = listed.iter().map(id_of).collect();
    let created: BTreeSet<String> = replies.iter().map(|r| id_of(&r.body)).collect();
    assert_eq!(ids, created);
    // The next one continues the sequence.
    let next = s.try_ticket(json!({ "title": "next" })).await;
    assert_eq!(next.body["key"], format!("PROJ-{}", WRITERS + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_beyond_the_retry_bound_still_all_land() {
    // More writers than a command's decide-again rounds: none may be turned
    // away, since that would lose its update.
    let s = setup().await;
    let id = s.ticket("t").await;
    let path = ticket_path(&id);
    let writers = 150;
    let patches = (0..writers).map(|i| s.patch(&path, json!({ "title": format!("writer {i}") })));
    for reply in join_all(patches).await {
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    }
    let history = s.server.history(&s.alice, &id).await;
    assert_eq!(versions(&history), (1..=writers + 1).collect::<Vec<_>>());
}
