//! The realtime gateway with real WebSocket clients against the whole server
//! (API, relay, projections, gateway) over real NATS and PostgreSQL.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};

use tokio_tungstenite::tungstenite::Message;

use ticketflow_testkit::ws::{close_code, connect, next_json, next_json_within, refused, WAIT};
use ticketflow_testkit::{setup, Setup};

fn tickets_url(s: &Setup, token: &str, since: Option<i64>) -> String {
    let mut url = s.server.ws_url(&format!(
        "/ws/projects/{}/tickets/?token={token}",
        s.project_id
    ));
    if let Some(since) = since {
        url.push_str(&format!("&since={since}"));
    }
    url
}

/// A projection worker that died between storing a channel message and
/// publishing it: live sockets still get the message within seconds (the
/// gateway's head check), not only once the channel's next message comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_stored_but_never_published_reaches_live_sockets_within_seconds() {
    let s = setup().await;
    let mut socket = connect(&tickets_url(&s, &s.alice.token, None)).await;
    let hello = next_json(&mut socket).await;
    let seq = hello["seq"].as_i64().expect("the head") + 1;
    let message = json!({ "type": "ticket_updated", "seq": seq, "project_id": s.project_id });
    s.server
        .store_unpublished_ticket_message(&s.project_id, seq, &message)
        .await;
    let got = next_json_within(&mut socket, Duration::from_secs(3)).await;
    assert_eq!(got, message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn handshake_refusals_come_before_the_upgrade() {
    let s = setup().await;
    let eve = s.server.user("eve").await;
    let base = s
        .server
        .ws_url(&format!("/ws/projects/{}/tickets/", s.project_id));
    assert_eq!(refused(&base).await, 401);
    assert_eq!(refused(&format!("{base}?token=garbage")).await, 401);
    assert_eq!(refused(&format!("{base}?token={}", eve.token)).await, 403);
    let unknown = s.server.ws_url(&format!(
        "/ws/projects/{}/tickets/?token={}",
        uuid::Uuid::new_v4(),
        s.alice.token
    ));
    assert_eq!(refused(&unknown).await, 404);
    let not_uuid = s.server.ws_url(&format!(
        "/ws/projects/nope/tickets/?token={}",
        s.alice.token
    ));
    assert_eq!(refused(&not_uuid).await, 404);
    assert_eq!(
        refused(&format!("{base}?token={}&since=abc", s.alice.token)).await,
        400
    );
    assert_eq!(refused(&s.server.ws_url("/ws/notifications/")).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connection_established_then_ping_pong_and_bad_messages_keep_the_socket() {
    let s = setup().await;
    let mut socket = connect(&tickets_url(&s, &s.alice.token, None)).await;
    let hello = next_json(&mut socket).await;
    assert_eq!(hello["type"], "connection_established");
    assert_eq!(hello["channel"], "tickets");
    assert_eq!(hello["user_id"], json!(s.alice.id));
    assert_eq!(hello["project_id"], json!(s.project_id));
    assert_eq!(hello["seq"], 0);
    socket
        .send(Message::text(r#"{"type":"ping","timestamp":123}"#))
        .await
        .expect("send");
    assert_eq!(
        next_json(&mut socket).await,
        json!({ "type": "pong", "timestamp": 123 })
    );
    for bad in ["not json", r#"{"type":"dance"}"#, r#"{"no":"type"}"#] {
        socket.send(Message::text(bad)).await.expect("send");
        let reply = next_json(&mut socket).await;
        assert_eq!(reply["type"], "error");
        assert_eq!(reply["code"], "bad_message");
    }
    let shell = r#"{"type":"ping","timestamp":""}"#;
    let big = format!(
        r#"{{"type":"ping","timestamp":"{}"}}"#,
        "x".repeat(65_536 - shell.len())
    );
    assert_eq!(big.len(), 65_536);
    socket.send(Message::text(big)).await.expect("send");
    assert_eq!(
        next_json(&mut socket).await["type"],
        "pong",
        "65,536 bytes are allowed"
    );
    socket
        .send(Message::text("x".repeat(65_537)))
        .await
        .expect("send");
    assert_eq!(close_code(&mut socket).await, 1009);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn binary_frames_close_with_1003() {
    let s = setup().await;
    let mut socket = connect(&tickets_url(&s, &s.alice.token, None)).await;
    next_json(&mut socket).await;
    socket
        .send(Message::binary(vec![1, 2, 3]))
        .await
        .expect("send");
    assert_eq!(close_code(&mut socket).await, 1003);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_subscribers_get_every_message_in_order_with_identical_seq() {
    let s = setup().await;
    let bob = s.member("bob").await;
    let mut a = connect(&tickets_url(&s, &s.alice.token, None)).await;
    let mut b = connect(&tickets_url(&s, &bob.token, None)).await;
    next_json(&mut a).await;
    next_json(&mut b).await;
    let ticket = s.ticket("Fix login bug").await;
    let path = format!("/api/tickets/{ticket}");
    s.patch(&path, json!({ "title": "Fix login", "priority": "high" }))
        .await;
    s.server
        .post(
            &format!("{path}/comments"),
            &bob.token,
            json!({ "body": "on it" }),
        )
        .await;
    s.delete(&path).await;
    let mut got_a = Vec::new();
    let mut got_b = Vec::new();
    for _ in 0..5 {
        got_a.push(next_json(&mut a).await);
        got_b.push(next_json(&mut b).await);
    }
    assert_eq!(got_a, got_b);
    let summary: Vec<(String, String, i64)> = got_a
        .iter()
        .map(|m| {
            let kind = m["action"]
                .as_str()
                .unwrap_or(m["type"].as_str().unwrap_or(""))
                .to_string();
            (
                kind,
                m["event_type"].as_str().unwrap_or("").to_string(),
                m["seq"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    let expected = [
        ("created", "TicketCreated", 1),
        ("updated", "TicketTitleChanged", 2),
        ("updated", "TicketPriorityChanged", 3),
        ("comment_added", "CommentAdded", 4),
        ("deleted", "TicketDeleted", 5),
    ];
    let expected: Vec<(String, String, i64)> = expected
        .iter()
        .map(|(a, t, n)| (a.to_string(), t.to_string(), *n))
        .collect();
    assert_eq!(summary, expected);
    assert_eq!(got_a[0]["data"]["key"], "PROJ-1");
    assert_eq!(got_a[0]["actor"]["username"], "alice");
    assert_eq!(got_a[3]["data"]["body"], "on it");
    assert_eq!(
        got_a[4]["data"]["title"], "Fix login",
        "a deleted ticket carries its last state"
    );
    assert_eq!(got_a[4]["data"]["version"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replay_after_fifty_missed_changes_then_live() {
    let s = setup().await;
    let ticket = s.ticket("start").await;
    let path = format!("/api/tickets/{ticket}");
    // Read-your-writes first, so the head below includes the creation.
    s.get(&path).await;
    let mut first = connect(&tickets_url(&s, &s.alice.token, None)).await;
    let head = next_json(&mut first).await["seq"].as_i64().expect("seq");
    assert_eq!(head, 1);
    drop(first);
    for i in 0..50 {
        s.patch(&path, json!({ "title": format!("t{i}") })).await;
    }
    // The stored messages are what replay reads: wait for the projection.
    s.get(&path).await;
    let mut socket = connect(&tickets_url(&s, &s.alice.token, Some(head))).await;
    assert_eq!(
        next_json(&mut socket).await["type"],
        "connection_established"
    );
    let mut seqs = Vec::new();
    for _ in 0..50 {
        let message = next_json(&mut socket).await;
        assert_eq!(message["type"], "ticket_update");
        seqs.push(message["seq"].as_i64().expect("seq"));
    }
    assert_eq!(seqs, (head + 1..=head + 50).collect::<Vec<_>>());
    assert_eq!(
        next_json(&mut socket).await,
        json!({ "type": "replay_complete", "seq": head + 50 })
    );
    s.patch(&path, json!({ "title": "live" })).await;
    let live = next_json(&mut socket).await;
    assert_eq!(live["seq"], head + 51);
    assert_eq!(live["data"]["title"], "live");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_restart_the_data_stays_and_since_resumes_the_stream() {
    let s = setup().await;
    let ticket = s.ticket("before").await;
    let path = format!("/api/tickets/{ticket}");
    s.patch(&path, json!({ "title": "renamed" })).await;
    s.get(&path).await;
    let mut socket = connect(&tickets_url(&s, &s.alice.token, Some(0))).await;
    assert_eq!(next_json(&mut socket).await["seq"], 2);
    let before = [next_json(&mut socket).await, next_json(&mut socket).await];
    drop(socket);

    let Setup {
        server,
        alice,
        project_id,
    } = s;
    let s = Setup {
        server: server.restart().await,
        alice,
        project_id,
    };
    let reply = s.get(&path).await;
    assert_eq!(reply.body["title"], "renamed", "{:?}", reply.body);
    assert_eq!(s.server.history(&s.alice, &ticket).await.len(), 2);
    // A client that saw seq 1 before the restart gets seq 2, byte for byte.
    let mut socket = connect(&tickets_url(&s, &s.alice.token, Some(1))).await;
    assert_eq!(next_json(&mut socket).await["seq"], 2);
    assert_eq!(next_json(&mut socket).await, before[1]);
    assert_eq!(
        next_json(&mut socket).await,
        json!({ "type": "replay_complete", "seq": 2 })
    );
    s.patch(&path, json!({ "title": "after" })).await;
    let live = next_json(&mut socket).await;
    assert_eq!(
        (live["seq"].as_i64(), live["data"]["title"].as_str()),
        (Some(3), Some("after"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn since_beyond_the_head_asks_for_a_resync_then_goes_live() {
    let s = setup().await;
    let mut socket = connect(&tickets_url(&s, &s.alice.token, Some(99))).await;
    assert_eq!(
        next_json(&mut socket).await["type"],
        "connection_established"
    );
    assert_eq!(
        next_json(&mut socket).await,
        json!({ "type": "resync_required", "seq": 0 })
    );
    s.ticket("after resync").await;
    assert_eq!(next_json(&mut socket).await["seq"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reconnecting_while_a_writer_runs_never_loses_or_repeats() {
    let s = setup().await;
    let ticket = s.ticket("busy").await;
    let writer = {
        let base = s.server.base.clone();
        let token = s.alice.token.clone();
        let path = format!("/api/tickets/{ticket}");
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            for i in 0..120 {
                let body = json!({ "title": format!("w{i}") });
                let r = http
                    .patch(format!("{base}{path}"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await;
                assert!(r.expect("patch").status().is_success());
            }
        })
    };
    let mut seen: Vec<i64> = Vec::new();
    let mut since: Option<i64> = None;
    // Reconnect after every few messages, resuming from the last one seen.
    while seen.last().copied().unwrap_or(0) < 121 {
        let mut socket = connect(&tickets_url(&s, &s.alice.token, since)).await;
        let hello = next_json(&mut socket).await;
        if since.is_none() {
            seen.extend(1..=hello["seq"].as_i64().unwrap_or(0));
        }
        for _ in 0..7 {
            let message = next_json(&mut socket).await;
            match message["type"].as_str() {
                Some("replay_complete") => continue,
                Some("ticket_update") => seen.push(message["seq"].as_i64().expect("seq")),
                other => panic!("unexpected {other:?}"),
            }
            if seen.last().copied() == Some(121) {
                break;
            }
        }
        since = seen.last().copied();
    }
    writer.await.expect("writer");
    assert_eq!(seen, (1..=121).collect::<Vec<_>>(), "a gap or a duplicate");
    let feed = s
        .server
        .list_all(
            &format!("/api/projects/{}/events", s.project_id),
            &s.alice.token,
            200,
        )
        .await;
    let ticket_events = feed
        .iter()
        .filter(|e| e["ticket_id"] != Value::Null)
        .count();
    assert_eq!(ticket_events, 121, "one message per ticket event");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notifications_arrive_live_with_a_per_user_seq() {
    let s = setup().await;
    let bob = s.member("bob").await;
    let url = s
        .server
        .ws_url(&format!("/ws/notifications/?token={}", bob.token));
    let mut socket = connect(&url).await;
    let hello = next_json(&mut socket).await;
    assert_eq!(hello["channel"], "notifications");
    assert_eq!(hello["seq"], 0);
    let ticket = s.ticket("Fix login bug").await;
    s.patch(
        &format!("/api/tickets/{ticket}"),
        json!({ "assignee_id": bob.id }),
    )
    .await;
    let message = next_json(&mut socket).await;
    assert_eq!(message["type"], "notification_message");
    assert_eq!(message["seq"], 1);
    assert_eq!(message["data"]["notification_type"], "ticket_assigned");
    assert_eq!(
        message["data"]["message"],
        "You were assigned to PROJ-1: Fix login bug"
    );
    drop(socket);
    let mut again = connect(&format!("{url}&since=0")).await;
    next_json(&mut again).await;
    assert_eq!(
        next_json(&mut again).await,
        message,
        "replay is identical to live"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removed_member_is_closed_with_4403() {
    let s = setup().await;
    let bob = s.member("bob").await;
    let mut socket = connect(&tickets_url(&s, &bob.token, None)).await;
    next_json(&mut socket).await;
    let path = format!("/api/projects/{}/members/{}", s.project_id, bob.id);
    assert_eq!(s.delete(&path).await.status.as_u16(), 204);
    assert_eq!(close_code(&mut socket).await, 4403);
    assert_eq!(refused(&tickets_url(&s, &bob.token, None)).await, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reading_notifications_updates_every_tab_without_a_seq() {
    let s = setup().await;
    let bob = s.member("bob").await;
    let url = s
        .server
        .ws_url(&format!("/ws/notifications/?token={}", bob.token));
    let (mut tab1, mut tab2) = (connect(&url).await, connect(&url).await);
    next_json(&mut tab1).await;
    next_json(&mut tab2).await;
    let ticket = s.ticket("one").await;
    let path = format!("/api/tickets/{ticket}");
    s.patch(&path, json!({ "assignee_id": bob.id })).await;
    s.post(&format!("{path}/comments"), json!({ "body": "hi" }))
        .await;
    let first = next_json(&mut tab1).await;
    next_json(&mut tab1).await;
    next_json(&mut tab2).await;
    next_json(&mut tab2).await;
    let id = first["data"]["id"].as_str().expect("id");
    s.server
        .post(
            &format!("/api/notifications/{id}/read"),
            &bob.token,
            json!({}),
        )
        .await;
    let expected = json!({ "type": "notifications_read", "ids": [id], "unread_count": 1 });
    assert_eq!(next_json(&mut tab1).await, expected);
    assert_eq!(next_json(&mut tab2).await, expected);
    s.server
        .post("/api/notifications/read-all", &bob.token, json!({}))
        .await;
    let all = json!({ "type": "notifications_read", "ids": "all", "unread_count": 0 });
    assert_eq!(next_json(&mut tab1).await, all);
    // Not part of the history: a replay from 0 has the two notifications only.
    let mut replay = connect(&format!("{url}&since=0")).await;
    next_json(&mut replay).await;
    assert_eq!(next_json(&mut replay).await["seq"], 1);
    assert_eq!(next_json(&mut replay).await["seq"], 2);
    assert_eq!(
        next_json(&mut replay).await,
        json!({ "type": "replay_complete", "seq": 2 })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_socket_is_closed_with_4401_when_its_token_expires() {
    let s = setup().await;
    let now = chrono::Utc::now().timestamp();
    let claims = json!({ "sub": s.alice.id, "username": "alice", "iat": now, "exp": now + 2 });
    let key = jsonwebtoken::EncodingKey::from_secret(ticketflow_testkit::JWT_SECRET.as_bytes());
    let token =
        jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("token");
    let mut socket = connect(&tickets_url(&s, &token, None)).await;
    assert_eq!(
        next_json(&mut socket).await["type"],
        "connection_established"
    );
    assert_eq!(close_code(&mut socket).await, 4401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_switching_gateway_instances_resumes_seamlessly() {
    let s = setup().await;
    let Some(other) = s.server.another_instance().await else {
        return; // Embedded: one instance.
    };
    let path = format!(
        "/ws/projects/{}/tickets/?token={}",
        s.project_id, s.alice.token
    );
    let mut on_a = connect(&s.server.ws_url(&path)).await;
    next_json(&mut on_a).await;
    let ticket = s.ticket("hop").await;
    let first = next_json(&mut on_a).await;
    drop(on_a);
    let edit = format!("/api/tickets/{ticket}");
    for i in 0..5 {
        s.patch(&edit, json!({ "title": format!("t{i}") })).await;
    }
    let mut on_b = connect(&other.ws_url(&format!("{path}&since={}", first["seq"]))).await;
    next_json(&mut on_b).await;
    let mut seqs = Vec::new();
    loop {
        let message = next_json(&mut on_b).await;
        if message["type"] == "replay_complete" {
            break;
        }
        seqs.push(message["seq"].as_i64().expect("seq"));
    }
    // Whatever the replay did not cover arrives live on the other instance.
    while seqs.len() < 5 {
        seqs.push(next_json(&mut on_b).await["seq"].as_i64().expect("seq"));
    }
    assert_eq!(seqs, vec![2, 3, 4, 5, 6]);
    s.patch(&edit, json!({ "title": "live on b" })).await;
    let live = next_json(&mut on_b).await;
    assert_eq!(
        (live["seq"].clone(), live["data"]["title"].clone()),
        (json!(7), json!("live on b"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_server_pings_and_drops_a_silent_peer() {
    let timing = ticketflow_realtime::Timing {
        ping_every: Duration::from_millis(200),
        idle_limit: Duration::from_secs(1),
    };
    let server = ticketflow_testkit::TestServer::start_with(ticketflow_testkit::Config {
        timing,
        ..Default::default()
    })
    .await;
    let alice = server.user("alice").await;
    let url = server.ws_url(&format!("/ws/notifications/?token={}", alice.token));
    let mut socket = connect(&url).await;
    assert_eq!(
        next_json(&mut socket).await["type"],
        "connection_established"
    );
    // Reading answers Pings (tungstenite replies Pong), so the peer is alive.
    let mut pings = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline {
        let frame = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a frame");
        match frame.expect("open").expect("frame") {
            Message::Ping(_) => pings += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        pings >= 5,
        "a Ping about every 200 ms, got {pings} in 3 s (longer than the idle limit)"
    );
    // Silence is the scenario here: not reading means not answering Pings.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(close_code(&mut socket).await, 1000);
}
