//! Presence (`/ws/projects/{pid}/presence/`) with real WebSocket clients
//! against the whole server, one instance or two sharing the database and NATS.
//!
//! Nothing waits by sleeping: messages are awaited with a deadline, and a
//! message that must NOT come is ruled out by a ping whose pong comes next
//! (a presence socket sends what was queued for it before answering a frame).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

use ticketflow_testkit::ws::{
    close_code, connect, next_json, next_json_within, nothing_more, refused, send_json, Socket,
    WAIT,
};
use ticketflow_testkit::{setup, Setup};
use ticketflow_testkit::{Front, TestUser};

/// Closes a tab and waits until the server has let go of it.
async fn close_tab(mut socket: Socket) {
    socket.close(None).await.expect("close");
    let drained = async { while let Some(Ok(_)) = socket.next().await {} };
    tokio::time::timeout(WAIT, drained)
        .await
        .expect("server did not close in time");
}

fn presence_path(s: &Setup) -> String {
    format!("/ws/projects/{}/presence/", s.project_id)
}

fn presence_url(s: &Setup, user: &TestUser) -> String {
    s.server
        .ws_url(&format!("{}?token={}", presence_path(s), user.token))
}

fn presence_url_on(front: &Front, s: &Setup, user: &TestUser) -> String {
    front.ws_url(&format!("{}?token={}", presence_path(s), user.token))
}

/// Opens a presence socket: checks `connection_established`, returns the
/// socket and its `presence_state`.
async fn join(url: &str, user: &TestUser, project_id: &str) -> (Socket, Value) {
    let mut socket = connect(url).await;
    let hello = next_json(&mut socket).await;
    assert_eq!(
        hello,
        json!({
            "type": "connection_established", "channel": "presence",
            "user_id": user.id, "project_id": project_id,
        }),
        "presence's connection_established carries no seq"
    );
    let state = next_json(&mut socket).await;
    assert_eq!(state["type"], "presence_state", "{state}");
    (socket, state)
}

/// The user ids in a `presence_state`, sorted.
fn present(state: &Value) -> Vec<String> {
    let mut ids: Vec<String> = state["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["user_id"].as_str().expect("user_id").to_string())
        .collect();
    ids.sort();
    ids
}

fn ids(users: &[&TestUser]) -> Vec<String> {
    let mut ids: Vec<String> = users.iter().map(|u| u.id.clone()).collect();
    ids.sort();
    ids
}

fn status(action: &str, user: &TestUser) -> Value {
    json!({ "type": "user_status", "action": action, "user_id": user.id, "username": user.username })
}

/// A ticket of the project, visible in the read model (where presence checks it).
async fn visible_ticket(s: &Setup, title: &str) -> String {
    let id = s.ticket(title).await;
    let reply = s.get(&format!("/api/tickets/{id}")).await;
    assert_eq!(reply.status.as_u16(), 200, "{:?}", reply.body);
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn handshake_checks_like_the_tickets_channel() {
    let s = setup().await;
    let eve = s.server.user("eve").await;
    let base = s.server.ws_url(&presence_path(&s));
    assert_eq!(refused(&base).await, 401);
    assert_eq!(refused(&format!("{base}?token=garbage")).await, 401);
    assert_eq!(refused(&format!("{base}?token={}", eve.token)).await, 403);
    let unknown = s.server.ws_url(&format!(
        "/ws/projects/{}/presence/?token={}",
        uuid::Uuid::new_v4(),
        s.alice.token
    ));
    assert_eq!(refused(&unknown).await, 404);
    let not_uuid = s.server.ws_url(&format!(
        "/ws/projects/nope/presence/?token={}",
        s.alice.token
    ));
    assert_eq!(refused(&not_uuid).await, 404);

    // The header token wins over ?token=.
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "{base}?token={}",
            eve.token
        ))
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", s.alice.token).parse().expect("header"),
    );
    let (mut socket, _) = connect_async(request).await.expect("header token wins");
    assert_eq!(next_json(&mut socket).await["user_id"], json!(s.alice.id));

    // Without the trailing slash too; `since` is ignored, even a bad one.
    let bare = s.server.ws_url(&format!(
        "/ws/projects/{}/presence?token={}&since=abc",
        s.project_id, s.alice.token
    ));
    let (_socket, state) = join(&bare, &s.alice, &s.project_id).await;
    assert_eq!(present(&state), ids(&[&s.alice]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn joined_and_left_are_per_user_not_per_connection() {
    let s = setup().await;
    let bob = s.member("bob").await;

    let (mut alice, state) = join(&presence_url(&s, &s.alice), &s.alice, &s.project_id).await;
    assert_eq!(
        state,
        json!({ "type": "presence_state", "users": [
            { "user_id": s.alice.id, "username": "alice", "viewing_ticket_id": null },
        ] }),
        "the joiner is in presence_state"
    );

    let (mut bob1, state) = join(&presence_url(&s, &bob), &bob, &s.project_id).await;
    assert_eq!(present(&state), ids(&[&s.alice, &bob]));
    assert_eq!(next_json(&mut alice).await, status("joined", &bob));
    nothing_more(&mut bob1, "the joiner gets no joined about itself").await;

    let (mut bob2, state) = join(&presence_url(&s, &bob), &bob, &s.project_id).await;
    assert_eq!(present(&state), ids(&[&s.alice, &bob]));
    nothing_more(&mut alice, "a second tab sends no second joined").await;
    nothing_more(&mut bob1, "nor to the user's first tab").await;

    close_tab(bob1).await;
    nothing_more(&mut alice, "closing one of two tabs is no left").await;

    // A third user sees bob once.
    let carol = s.member("carol").await;
    let (_carol, state) = join(&presence_url(&s, &carol), &carol, &s.project_id).await;
    assert_eq!(present(&state), ids(&[&s.alice, &bob, &carol]));
    assert_eq!(next_json(&mut alice).await, status("joined", &carol));
    assert_eq!(next_json(&mut bob2).await, status("joined", &carol));

    close_tab(bob2).await;
    assert_eq!(next_json(&mut alice).await, status("left", &bob));
    nothing_more(&mut alice, "one left").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn viewing_and_typing_reach_the_other_users_only() {
    let s = setup().await;
    let bob = s.member("bob").await;
    let ticket = visible_ticket(&s, "Shared").await;

    let (mut alice1, _) = join(&presence_url(&s, &s.alice), &s.alice, &s.project_id).await;
    let (mut alice2, _) = join(&presence_url(&s, &s.alice), &s.alice, &s.project_id).await;
    let (mut bob1, _) = join(&presence_url(&s, &bob), &bob, &s.project_id).await;
    assert_eq!(next_json(&mut alice1).await, status("joined", &bob));
    assert_eq!(next_json(&mut alice2).await, status("joined", &bob));

    send_json(
        &mut alice1,
        json!({ "type": "viewing", "ticket_id": ticket }),
    )
    .await;
    assert_eq!(
        next_json(&mut bob1).await,
        json!({ "type": "ticket_viewing", "user_id": s.alice.id, "username": "alice", "ticket_id": ticket })
    );
    send_json(
        &mut alice1,
        json!({ "type": "typing", "ticket_id": ticket }),
    )
    .await;
    assert_eq!(
        next_json(&mut bob1).await,
        json!({ "type": "user_typing", "user_id": s.alice.id, "username": "alice", "ticket_id": ticket })
    );
    nothing_more(&mut alice1, "the sender's socket gets neither").await;
    nothing_more(&mut alice2, "nor the sender's other tab").await;

    // A later joiner sees what alice views.
    let (mut bob2, state) = join(&presence_url(&s, &bob), &bob, &s.project_id).await;
    let alice_entry = state["users"]
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["user_id"] == json!(s.alice.id))
        .expect("alice present")
        .clone();
    assert_eq!(alice_entry["viewing_ticket_id"], json!(ticket));

    send_json(&mut bob2, json!({ "type": "viewing", "ticket_id": null })).await;
    let expected = json!({ "type": "ticket_viewing", "user_id": bob.id, "username": "bob", "ticket_id": null });
    assert_eq!(next_json(&mut alice1).await, expected);
    assert_eq!(next_json(&mut alice2).await, expected);
    nothing_more(&mut bob1, "bob's other tab gets nothing").await;
    nothing_more(&mut bob2, "bob's own socket gets nothing").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_is_bad_message_and_limits_hold() {
    let s = setup().await;
    let bob = s.member("bob").await;
    let other = s.server.project(&s.alice, "OTHER").await;
    let other_pid = other["id"].as_str().expect("id").to_string();
    let foreign = s
        .server
        .ticket(&s.alice, &other_pid, json!({ "title": "Elsewhere" }))
        .await
        .body["id"]
        .as_str()
        .expect("id")
        .to_string();
    let reply = s.get(&format!("/api/tickets/{foreign}")).await;
    assert_eq!(reply.status.as_u16(), 200);

    let (mut alice, _) = join(&presence_url(&s, &s.alice), &s.alice, &s.project_id).await;
    let (mut bob_socket, _) = join(&presence_url(&s, &bob), &bob, &s.project_id).await;
    assert_eq!(next_json(&mut alice).await, status("joined", &bob));

    send_json(&mut alice, json!({ "type": "ping", "timestamp": 7 })).await;
    assert_eq!(
        next_json(&mut alice).await,
        json!({ "type": "pong", "timestamp": 7 })
    );
    let bad = [
        json!({ "type": "viewing", "ticket_id": foreign }),
        json!({ "type": "typing", "ticket_id": foreign }),
        json!({ "type": "viewing", "ticket_id": uuid::Uuid::new_v4() }),
        json!({ "type": "typing", "ticket_id": null }),
        json!({ "type": "typing" }),
        json!({ "type": "viewing", "ticket_id": "nope" }),
        json!({ "type": "dance" }),
        json!({ "no": "type" }),
    ];
    for message in bad {
        send_json(&mut alice, message.clone()).await;
        let reply = next_json(&mut alice).await;
        assert_eq!(reply["type"], "error", "{message}");
        assert_eq!(reply["code"], "bad_message", "{message}");
    }
    alice.send(Message::text("not json")).await.expect("send");
    assert_eq!(next_json(&mut alice).await["code"], "bad_message");
    nothing_more(&mut bob_socket, "refused messages reach nobody").await;

    let shell = r#"{"type":"ping","timestamp":""}"#;
    let big = format!(
        r#"{{"type":"ping","timestamp":"{}"}}"#,
        "x".repeat(65_536 - shell.len())
    );
    alice.send(Message::text(big)).await.expect("send");
    assert_eq!(next_json(&mut alice).await["type"], "pong");
    alice
        .send(Message::text("x".repeat(65_537)))
        .await
        .expect("send");
    assert_eq!(close_code(&mut alice).await, 1009);
    assert_eq!(
        next_json(&mut bob_socket).await,
        status("left", &s.alice),
        "left whatever closed the socket"
    );

    let (mut again, _) = join(&presence_url(&s, &s.alice), &s.alice, &s.project_id).await;
    assert_eq!(next_json(&mut bob_socket).await, status("joined", &s.alice));
    again
        .send(Message::binary(vec![1, 2, 3]))
        .await
        .expect("send");
    assert_eq!(close_code(&mut again).await, 1003);
    assert_eq!(next_json(&mut bob_socket).await, status("left", &s.alice));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn viewing_and_typing_are_bad_messages_on_the_other_channels() {
    let s = setup().await;
    let ticket = visible_ticket(&s, "T").await;
    let urls = [
        s.server.ws_url(&format!(
            "/ws/projects/{}/tickets/?token={}",
            s.project_id, s.alice.token
        )),
        s.server
            .ws_url(&format!("/ws/notifications/?token={}", s.alice.token)),
    ];
    for url in urls {
        let mut socket = connect(&url).await;
        assert_eq!(
            next_json(&mut socket).await["type"],
            "connection_established"
        );
        for kind in ["viewing", "typing"] {
            send_json(&mut socket, json!({ "type": kind, "ticket_id": ticket })).await;
            let reply = next_json(&mut socket).await;
            assert_eq!(reply["code"], "bad_message", "{kind} on {url}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removed_member_is_closed_and_leaves() {
    let s = setup().await;
    let bob = s.member("bob").await;
    let (mut alice, _) = join(&presence_url(&s, &s.alice), &s.alice, &s.project_id).await;
    let (mut bob_socket, _) = join(&presence_url(&s, &bob), &bob, &s.project_id).await;
    assert_eq!(next_json(&mut alice).await, status("joined", &bob));
    let path = format!("/api/projects/{}/members/{}", s.project_id, bob.id);
    assert_eq!(s.delete(&path).await.status.as_u16(), 204);
    assert_eq!(close_code(&mut bob_socket).await, 4403);
    assert_eq!(next_json(&mut alice).await, status("left", &bob));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn users_on_two_instances_see_each_other() {
    let s = setup().await;
    let bob = s.member("bob").await;
    let ticket = visible_ticket(&s, "Across").await;
    let Some(other) = s.server.another_instance().await else {
        return; // Embedded: one instance.
    };

    let (mut alice, state) = join(&presence_url(&s, &s.alice), &s.alice, &s.project_id).await;
    assert_eq!(present(&state), ids(&[&s.alice]));

    let (mut bob1, state) = join(&presence_url_on(&other, &s, &bob), &bob, &s.project_id).await;
    assert_eq!(
        present(&state),
        ids(&[&s.alice, &bob]),
        "a fresh instance knows who is on the others"
    );
    assert_eq!(next_json(&mut alice).await, status("joined", &bob));

    send_json(&mut bob1, json!({ "type": "viewing", "ticket_id": ticket })).await;
    assert_eq!(
        next_json(&mut alice).await,
        json!({ "type": "ticket_viewing", "user_id": bob.id, "username": "bob", "ticket_id": ticket })
    );
    send_json(&mut alice, json!({ "type": "typing", "ticket_id": ticket })).await;
    assert_eq!(
        next_json(&mut bob1).await,
        json!({ "type": "user_typing", "user_id": s.alice.id, "username": "alice", "ticket_id": ticket })
    );

    // Bob's second tab, on the first instance: no second joined, and its
    // presence_state shows what bob views on the other instance.
    let (bob2, state) = join(&presence_url(&s, &bob), &bob, &s.project_id).await;
    let bob_entry = state["users"]
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["user_id"] == json!(bob.id))
        .expect("bob present")
        .clone();
    assert_eq!(bob_entry["viewing_ticket_id"], json!(ticket));
    nothing_more(&mut alice, "a second tab on another instance is no joined").await;

    close_tab(bob2).await;
    nothing_more(&mut alice, "bob is still on the other instance").await;
    close_tab(bob1).await;
    assert_eq!(next_json(&mut alice).await, status("left", &bob));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_users_of_a_dead_instance_leave_within_about_30_seconds() {
    let s = setup().await;
    let bob = s.member("bob").await;
    let Some(other) = s.server.another_instance().await else {
        return; // Embedded: one instance.
    };
    let (mut alice, _) = join(&presence_url(&s, &s.alice), &s.alice, &s.project_id).await;
    let (_bob, _) = join(&presence_url_on(&other, &s, &bob), &bob, &s.project_id).await;
    assert_eq!(next_json(&mut alice).await, status("joined", &bob));
    let died = tokio::time::Instant::now();
    // The instance stops: no more beats, no leave.
    drop(other);
    let left = next_json_within(&mut alice, Duration::from_secs(45)).await;
    assert_eq!(left, status("left", &bob), "within 45 s");
    let after = died.elapsed();
    assert!(
        after >= Duration::from_secs(15),
        "not before the expiry: {after:?}"
    );
}

/// A ticket is viewable the moment its creation is answered, not once the
/// read model has it: a user who creates a ticket, opens presence and sends
/// `viewing` right after `presence_state` reaches the user already there,
/// every round (it was refused as not a ticket of the project, often).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn viewing_a_ticket_just_created_reaches_the_others_every_time() {
    let s = setup().await;
    let bob = s.member("bob").await;
    let (mut bob_socket, _) = join(&presence_url(&s, &bob), &bob, &s.project_id).await;
    let wait = Duration::from_secs(5);
    for round in 0..50 {
        let ticket = s.ticket(&format!("Round {round}")).await;
        let (mut alice, _) = join(&presence_url(&s, &s.alice), &s.alice, &s.project_id).await;
        send_json(
            &mut alice,
            json!({ "type": "viewing", "ticket_id": ticket }),
        )
        .await;
        nothing_more(&mut alice, &format!("round {round}: viewing accepted")).await;
        let joined = next_json_within(&mut bob_socket, wait).await;
        assert_eq!(joined, status("joined", &s.alice), "round {round}");
        assert_eq!(
            next_json_within(&mut bob_socket, wait).await,
            json!({ "type": "ticket_viewing", "user_id": s.alice.id, "username": "alice", "ticket_id": ticket }),
            "round {round}"
        );
        close_tab(alice).await;
        assert_eq!(
            next_json_within(&mut bob_socket, wait).await,
            status("left", &s.alice),
            "round {round}"
        );
    }
}
