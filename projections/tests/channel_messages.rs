//! WebSocket channel messages stored by the projections: the ticket channel
//! (`ticket_update`, `comment_added`) and the notification channel
//! (`notification_message`). What a live worker publishes after a batch and
//! what a reconnecting socket replays must be the same bytes under the same
//! contiguous seqs, through rebuilds and read flags alike.

use serde_json::{json, Value};
use ticketflow_domain::{Actor, Priority, TicketChanges};
use ticketflow_nats::Channel;
use ticketflow_projections::{
    all, by_name, rebuild, ChannelMessage, CommentsProjection, NotificationsProjection, Projection,
    TicketChannelProjection, TicketsProjection,
};
use ticketflow_store::{EventStore, StoredEvent};
use ticketflow_testkit::cast::{alice, bob, carol};
use ticketflow_testkit::on_each_backend;
use ticketflow_testkit::world::*;
use uuid::Uuid;

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("message JSON")
}

fn seqs(messages: &[ChannelMessage]) -> Vec<i64> {
    messages.iter().map(|m| m.seq).collect()
}

fn texts(messages: &[ChannelMessage]) -> Vec<(i64, String)> {
    messages.iter().map(|m| (m.seq, m.json.clone())).collect()
}

fn status(id: i64) -> Value {
    let (name, color) = match id {
        1 => ("Open", "#1890ff"),
        2 => ("In Progress", "#faad14"),
        _ => ("Done", "#52c41a"),
    };
    json!({"id": id, "name": name, "color": color})
}

/// The envelope every ticket-channel message of `e` has, around `rest`.
fn envelope(e: &StoredEvent, kind: &str, rest: Value) -> Value {
    let mut v = json!({
        "type": kind,
        "seq": e.seq.expect("ticket event seq"),
        "event_id": e.event_id,
        "event_type": e.event_type,
        "actor": {"id": e.actor.id, "username": e.actor.username},
        "timestamp": e.occurred_at,
    });
    for (k, x) in rest.as_object().expect("object") {
        v[k] = x.clone();
    }
    v
}

#[allow(clippy::too_many_arguments)]
fn update(
    e: &StoredEvent,
    action: &str,
    key: &str,
    title: &str,
    status_id: i64,
    priority: &str,
    assignee: Option<&Actor>,
    version: i64,
) -> Value {
    envelope(
        e,
        "ticket_update",
        json!({
            "action": action,
            "data": {
                "ticket_id": e.stream_id,
                "key": key,
                "title": title,
                "status": status(status_id),
                "priority": priority,
                "assignee": assignee.map(|a| json!({"id": a.id, "username": a.username})),
                "version": version,
            },
        }),
    )
}

/// Two tickets in one project, their events interleaved; the projection
/// synced after every command, as a live worker would, collecting what it
/// publishes. Returns the world, the messages, and the two tickets.
///
/// 1. alice creates PROJ-1 "Fix login bug" for bob
/// 2. bob creates PROJ-2 "Other"
/// 3. bob renames PROJ-1 and raises its priority: two events, two messages
/// 4. carol comments on PROJ-1
/// 5. alice moves PROJ-1 to Done
/// 6. alice hands PROJ-1 to carol
/// 7. bob deletes PROJ-1
/// 8. alice comments on PROJ-2
async fn ticket_story(backend: Backend) -> (World, Vec<ChannelMessage>, Uuid, Uuid) {
    let w = World::on(backend).await;
    let p = TicketChannelProjection;
    let mut live = w.sync_messages(&p).await;
    assert!(live.is_empty(), "member events make no message: {live:?}");
    let a = w.create(&alice(), "Fix login bug", Some(&bob())).await;
    live.extend(w.sync_messages(&p).await);
    let b = w.create(&bob(), "Other", None).await;
    live.extend(w.sync_messages(&p).await);
    let changes = TicketChanges {
        title: Some("Fix login".into()),
        priority: Some(Priority::High),
        ..TicketChanges::default()
    };
    w.update(&bob(), a, changes).await;
    live.extend(w.sync_messages(&p).await);
    w.comment(&carol(), a, "on it").await;
    live.extend(w.sync_messages(&p).await);
    w.status(&alice(), a, 3).await;
    live.extend(w.sync_messages(&p).await);
    w.assign(&alice(), a, Some(&carol())).await;
    live.extend(w.sync_messages(&p).await);
    w.delete(&bob(), a).await;
    live.extend(w.sync_messages(&p).await);
    w.comment(&alice(), b, "still here").await;
    live.extend(w.sync_messages(&p).await);
    (w, live, a, b)
}

async fn a_tickets_life_in_ticket_channel_messages(backend: Backend) {
    let (w, live, a, b) = ticket_story(backend).await;
    assert_eq!(seqs(&live), (1..=9).collect::<Vec<_>>());
    assert!(live.iter().all(|m| m.channel
        == Channel::Tickets {
            project_id: w.project_id
        }));

    let events: Vec<StoredEvent> = w
        .log()
        .await
        .into_iter()
        .filter(|e| e.stream_type == "ticket")
        .collect();
    assert_eq!(events.len(), 9);
    let e = |seq: usize| &events[seq - 1];
    let comment_id = |seq: usize| {
        let data: Value = e(seq).data.parse().expect("event data");
        data["comment_id"].clone()
    };
    let expected = vec![
        update(
            e(1),
            "created",
            "PROJ-1",
            "Fix login bug",
            1,
            "medium",
            Some(&bob()),
            1,
        ),
        update(e(2), "created", "PROJ-2", "Other", 1, "medium", None, 1),
        update(
            e(3),
            "updated",
            "PROJ-1",
            "Fix login",
            1,
            "medium",
            Some(&bob()),
            2,
        ),
        update(
            e(4),
            "updated",
            "PROJ-1",
            "Fix login",
            1,
            "high",
            Some(&bob()),
            3,
        ),
        envelope(
            e(5),
            "comment_added",
            json!({"data": {
                "comment_id": comment_id(5),
                "ticket_id": a,
                "ticket_key": "PROJ-1",
                "body": "on it",
                "author": {"id": carol().id, "username": "carol"},
            }}),
        ),
        update(
            e(6),
            "updated",
            "PROJ-1",
            "Fix login",
            3,
            "high",
            Some(&bob()),
            5,
        ),
        update(
            e(7),
            "updated",
            "PROJ-1",
            "Fix login",
            3,
            "high",
            Some(&carol()),
            6,
        ),
        // The last known state, at the deletion's version.
        update(
            e(8),
            "deleted",
            "PROJ-1",
            "Fix login",
            3,
            "high",
            Some(&carol()),
            7,
        ),
        envelope(
            e(9),
            "comment_added",
            json!({"data": {
                "comment_id": comment_id(9),
                "ticket_id": b,
                "ticket_key": "PROJ-2",
                "body": "still here",
                "author": {"id": alice().id, "username": "alice"},
            }}),
        ),
    ];
    let got: Vec<Value> = live.iter().map(|m| parse(&m.json)).collect();
    for (i, (got, want)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "message {}", i + 1);
    }
    assert_eq!(got.len(), expected.len());
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "TicketCreated",
            "TicketCreated",
            "TicketTitleChanged",
            "TicketPriorityChanged",
            "CommentAdded",
            "TicketStatusChanged",
            "TicketAssigned",
            "TicketDeleted",
            "CommentAdded"
        ]
    );

    // Fixed field order, the envelope first.
    assert!(
        live[0].json.starts_with(&format!(
            "{{\"type\":\"ticket_update\",\"action\":\"created\",\"seq\":1,\"event_id\":\"{}\",\
             \"event_type\":\"TicketCreated\",\"actor\":{{\"id\":\"{}\",\"username\":\"alice\"}},\
             \"timestamp\":",
            e(1).event_id,
            alice().id
        )),
        "{}",
        live[0].json
    );
    assert!(
        live[4].json.starts_with(&format!(
            "{{\"type\":\"comment_added\",\"seq\":5,\"event_id\":\"{}\",\
             \"event_type\":\"CommentAdded\",",
            e(5).event_id
        )),
        "{}",
        live[4].json
    );
    // RFC 3339 timestamps, to the microsecond the log keeps.
    let stamp = got[0]["timestamp"].as_str().expect("timestamp");
    let parsed = chrono::DateTime::parse_from_rfc3339(stamp).expect("RFC 3339");
    assert_eq!(parsed, e(1).occurred_at);

    // The stored seqs are the store's.
    for (m, e) in live.iter().zip(&events) {
        assert_eq!(Some(m.seq), e.seq);
    }
    // The deleted ticket's state is no longer kept; the live one's is.
    let kept = w.dump("rm_channel_tickets").await;
    let kept: Vec<&Value> = kept
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| &r["ticket_id"])
        .collect();
    assert_eq!(kept, vec![&json!(b)]);
}

async fn replay_sends_the_bytes_the_live_worker_sent(backend: Backend) {
    let (w, live, _, _) = ticket_story(backend).await;
    let pid = w.project_id;

    let replay = w.reads.ticket_messages(pid, 0, 1000).await.expect("replay");
    assert_eq!(replay, texts(&live));
    // From every point, in pages of two.
    for since in 0..=9usize {
        let page = w
            .reads
            .ticket_messages(pid, since as i64, 2)
            .await
            .expect("page");
        let end = (since + 2).min(live.len());
        assert_eq!(page, texts(&live[since..end]), "since {since}");
    }
    assert_eq!(w.reads.ticket_channel_head(pid).await.expect("head"), 9);
    assert_eq!(
        w.reads
            .ticket_channel_head(Uuid::now_v7())
            .await
            .expect("head"),
        0
    );
    assert!(w
        .reads
        .ticket_messages(Uuid::now_v7(), 0, 10)
        .await
        .expect("none")
        .is_empty());

    // Whatever the batch boundaries, the batches publish the replay, in
    // order, each batch the messages of its own events.
    let p = TicketChannelProjection;
    let log = w.log().await;
    for size in [1, 2, 3, log.len()] {
        w.reset(&p).await;
        let mut published = Vec::new();
        for chunk in log.chunks(size) {
            let batch = w.outcome(&p, chunk).await.messages;
            let seqs_in_chunk: Vec<i64> = chunk.iter().filter_map(|e| e.seq).collect();
            assert_eq!(seqs(&batch), seqs_in_chunk, "batches of {size}");
            published.extend(batch);
        }
        assert_eq!(texts(&published), replay, "batches of {size}");
    }

    // Projections without a channel publish nothing.
    for quiet in [
        &TicketsProjection as &dyn Projection,
        &CommentsProjection as &dyn Projection,
    ] {
        w.reset(quiet).await;
        assert!(w.sync_messages(quiet).await.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_stores_the_same_messages() {
    let (w, _, _, _) = ticket_story(Backend::Postgres).await;
    // More of everything, over several tickets.
    for i in 0..4 {
        let t = w.create(&carol(), &format!("T{i}"), Some(&alice())).await;
        w.comment(&bob(), t, "@carol look").await;
        w.status(&alice(), t, 2).await;
        if i % 2 == 1 {
            w.delete(&carol(), t).await;
        }
    }
    let p = by_name("ticket_channel").expect("ticket_channel is listed");
    assert!(all().iter().any(|q| q.name() == "ticket_channel"));
    w.sync(p.as_ref()).await;
    let incremental = w.dump_projection(p.as_ref()).await;
    let head = w
        .reads
        .ticket_channel_head(w.project_id)
        .await
        .expect("head");
    assert_eq!(head, 9 + 4 * 3 + 2);
    let before = w
        .reads
        .ticket_messages(w.project_id, 0, 1000)
        .await
        .expect("replay");
    assert_eq!(
        before.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        (1..=head).collect::<Vec<_>>()
    );

    for _ in 0..2 {
        rebuild(w.store.pool(), &w.store, p.clone(), &|_| {})
            .await
            .expect("rebuild");
        assert_eq!(w.dump_projection(p.as_ref()).await, incremental);
        let after = w
            .reads
            .ticket_messages(w.project_id, 0, 1000)
            .await
            .expect("replay");
        assert_eq!(after, before);
    }
    // And from scratch in one batch.
    w.reset(p.as_ref()).await;
    w.sync(p.as_ref()).await;
    assert_eq!(w.dump_projection(p.as_ref()).await, incremental);
    assert_eq!(
        w.checkpoint(p.name()).await,
        w.store.head_position().await.expect("head")
    );
}

/// The REST JSON of a notification, as the list renders it, unread.
fn rest_unread(n: &ticketflow_projections::Notification) -> Value {
    let mut v = json!(n);
    v["read"] = json!(false);
    v
}

async fn notification_messages_replay_identically_even_after_reads(backend: Backend) {
    let w = World::on(backend).await;
    let p = NotificationsProjection;
    let mut live = w.sync_messages(&p).await;
    let t = w.create(&alice(), "Fix login bug", Some(&bob())).await;
    live.extend(w.sync_messages(&p).await);
    w.comment(&bob(), t, "@alice and @carol, look").await;
    live.extend(w.sync_messages(&p).await);
    w.comment(&carol(), t, "works for me").await;
    live.extend(w.sync_messages(&p).await);
    w.status(&alice(), t, 2).await;
    live.extend(w.sync_messages(&p).await);
    w.assign(&alice(), t, Some(&carol())).await;
    live.extend(w.sync_messages(&p).await);
    // One batch of the whole log publishes the same, in the same order.
    w.reset(&p).await;
    assert_eq!(w.sync_messages(&p).await, live);

    // Read flags change nothing in a message.
    let (_, bobs) = w
        .reads
        .notifications(bob().id, false, None, 50)
        .await
        .expect("list");
    assert!(w.reads.mark_read(bob().id, bobs[1].id).await.expect("read"));
    w.reads.mark_all_read(carol().id).await.expect("read all");

    for user in [alice(), bob(), carol()] {
        let mine: Vec<ChannelMessage> = live
            .iter()
            .filter(|m| m.channel == Channel::Notifications { user_id: user.id })
            .cloned()
            .collect();
        let n = mine.len() as i64;
        assert!(n > 0, "{} has notifications", user.username);
        assert_eq!(seqs(&mine), (1..=n).collect::<Vec<_>>());
        let replay = w
            .reads
            .notification_messages(user.id, 0, 100)
            .await
            .expect("replay");
        assert_eq!(replay, texts(&mine), "{}", user.username);
        let tail = w
            .reads
            .notification_messages(user.id, n - 1, 100)
            .await
            .expect("tail");
        assert_eq!(tail, texts(&mine[mine.len() - 1..]));
        assert_eq!(w.reads.notification_head(user.id).await.expect("head"), n);

        // Each is the REST item, unread, in the envelope.
        let (_, rest) = w
            .reads
            .notifications(user.id, false, None, 50)
            .await
            .expect("list");
        for m in &mine {
            let item = rest.iter().find(|r| r.seq == m.seq).expect("listed");
            let v = parse(&m.json);
            assert_eq!(
                v,
                json!({"type": "notification_message", "seq": m.seq, "data": rest_unread(item)})
            );
            assert!(m.json.starts_with(&format!(
                "{{\"type\":\"notification_message\",\"seq\":{},\"data\":{{\"id\":\"{}\"",
                m.seq, item.id
            )));
        }
    }
    // Some of them are read by now, yet their messages say unread.
    let (unread, bobs) = w
        .reads
        .notifications(bob().id, false, None, 50)
        .await
        .expect("list");
    assert!(bobs.iter().any(|n| n.read));
    assert!(unread < bobs.len() as i64);
    assert!(w
        .reads
        .notification_messages(Uuid::now_v7(), 0, 10)
        .await
        .expect("nobody")
        .is_empty());
}

on_each_backend!(
    a_tickets_life_in_ticket_channel_messages,
    replay_sends_the_bytes_the_live_worker_sent,
    notification_messages_replay_identically_even_after_reads,
);
