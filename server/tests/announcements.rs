//! Announcements (`POST /api/projects/{pid}/announcements`): an admin's
//! message, an event in the project's stream, which every other member gets
//! as a `general` notification, live on their notification socket at their
//! next seq and in their list; the author gets none.

use serde_json::{json, Value};
use ticketflow_testkit::ws::{connect, next_json, nothing_more};
use ticketflow_testkit::{assert_error_in, keys, setup, sorted};

fn announcements(project_id: &str) -> String {
    format!("/api/projects/{project_id}/announcements")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn members_get_a_general_notification_live_and_in_their_list_the_author_none() {
    let s = setup().await;
    let bob = s.member("bob").await;
    let carol = s.member("carol").await;
    let socket_of = |token: &str| {
        s.server
            .ws_url(&format!("/ws/notifications/?token={token}"))
    };
    let mut bobs = connect(&socket_of(&bob.token)).await;
    let mut alices = connect(&socket_of(&s.alice.token)).await;
    next_json(&mut bobs).await;
    next_json(&mut alices).await;
    // bob's seq 1: an assignment.
    let ticket = s.ticket("Fix login bug").await;
    s.patch(
        &format!("/api/tickets/{ticket}"),
        json!({ "assignee_id": bob.id }),
    )
    .await;
    assert_eq!(next_json(&mut bobs).await["seq"], 1);

    let reply = s
        .post(
            &announcements(&s.project_id),
            json!({ "title": "System Alert", "message": "Your report is ready!" }),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 201, "{:?}", reply.body);
    let position = reply.position();
    assert!(position > 0);
    let a = &reply.body;
    assert_eq!(
        keys(a),
        sorted(&[
            "author",
            "created_at",
            "id",
            "message",
            "project_id",
            "title"
        ])
    );
    assert_eq!(a["project_id"], json!(s.project_id));
    assert_eq!(a["title"], "System Alert");
    assert_eq!(a["message"], "Your report is ready!");
    assert_eq!(
        a["author"],
        json!({ "id": s.alice.id, "username": s.alice.username })
    );

    let live = next_json(&mut bobs).await;
    assert_eq!(live["type"], "notification_message");
    assert_eq!(live["seq"], 2);
    let data = &live["data"];
    assert_eq!(data["seq"], 2);
    assert_eq!(data["notification_type"], "general");
    assert_eq!(data["title"], "System Alert");
    assert_eq!(data["message"], "Your report is ready!");
    assert_eq!(data["ticket_id"], Value::Null);
    assert_eq!(data["ticket_key"], Value::Null);
    assert_eq!(data["project_id"], json!(s.project_id));
    assert_eq!(data["read"], false);
    assert_eq!(data["timestamp"], a["created_at"]);
    nothing_more(&mut alices, "the author's own announcement").await;

    let list = s.server.get("/api/notifications", &bob.token).await;
    assert_eq!(list.body["unread_count"], 2);
    assert_eq!(list.body["items"][0], *data);
    let carols = s.server.get("/api/notifications", &carol.token).await;
    assert_eq!(carols.body["items"][0]["seq"], 1);
    assert_eq!(carols.body["items"][0]["notification_type"], "general");
    let alices_list = s.get("/api/notifications").await;
    assert_eq!(alices_list.body["items"], json!([]));

    // An event of the project's stream, in its feed.
    let feed = s
        .get(&format!("/api/projects/{}/events", s.project_id))
        .await;
    let last = feed.body["items"]
        .as_array()
        .expect("items")
        .last()
        .expect("an event")
        .clone();
    assert_eq!(last["type"], "AnnouncementPosted");
    assert_eq!(last["position"], position);
    assert_eq!(last["ticket_id"], Value::Null);
    assert_eq!(last["data"]["announcement_id"], a["id"]);
    assert_eq!(last["data"]["title"], "System Alert");

    // A reconnect replays it as it was sent live.
    drop(bobs);
    let mut again = connect(&format!("{}&since=1", socket_of(&bob.token))).await;
    next_json(&mut again).await;
    assert_eq!(next_json(&mut again).await, live);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_admins_announce_with_valid_fields() {
    let s = setup().await;
    let bob = s.member("bob").await;
    let dave = s.server.user("dave").await;
    let path = announcements(&s.project_id);
    let ok = json!({ "title": "t", "message": "m" });
    let as_bob = s.server.post(&path, &bob.token, ok.clone()).await;
    assert_error_in("a plain member", &as_bob, 403, "forbidden", None);
    let as_dave = s.server.post(&path, &dave.token, ok.clone()).await;
    assert_error_in("a non-member", &as_dave, 403, "forbidden", None);
    let unknown = s
        .post(
            &announcements(&uuid::Uuid::now_v7().to_string()),
            ok.clone(),
        )
        .await;
    assert_error_in("an unknown project", &unknown, 404, "not_found", None);
    let not_an_id = s.post(&announcements("nope"), ok.clone()).await;
    assert_error_in(
        "a project id that is no uuid",
        &not_an_id,
        404,
        "not_found",
        None,
    );

    let long = |n| "x".repeat(n);
    for (case, body, field) in [
        (
            "empty title",
            json!({ "title": "", "message": "m" }),
            "title",
        ),
        (
            "blank title",
            json!({ "title": "  ", "message": "m" }),
            "title",
        ),
        (
            "title of 201",
            json!({ "title": long(201), "message": "m" }),
            "title",
        ),
        (
            "empty message",
            json!({ "title": "t", "message": "" }),
            "message",
        ),
        (
            "message of 2001",
            json!({ "title": "t", "message": long(2001) }),
            "message",
        ),
        ("no message", json!({ "title": "t" }), "message"),
        (
            "a number for a title",
            json!({ "title": 1, "message": "m" }),
            "title",
        ),
        (
            "an unknown field",
            json!({ "title": "t", "message": "m", "x": 1 }),
            "x",
        ),
    ] {
        let reply = s.post(&path, body).await;
        assert_error_in(case, &reply, 422, "invalid_field", Some(field));
    }
    let edge = s
        .post(&path, json!({ "title": long(200), "message": long(2000) }))
        .await;
    assert_eq!(edge.status.as_u16(), 201, "{:?}", edge.body);
    // Refusals notified nobody: bob has the one announcement.
    let list = s.server.get("/api/notifications", &bob.token).await;
    assert_eq!(list.body["items"].as_array().expect("items").len(), 1);
}
