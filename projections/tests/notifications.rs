//! Notifications end to end: real commands through the event store, the
//! notifications projection, then the queries the API serves: every rule,
//! per-user contiguous seqs, unread counts, read and read-all.

use serde_json::json;
use ticketflow_domain::{Actor, NewTicket, NotificationType, Priority, TicketChanges};
use ticketflow_projections::{notification_id, Notification, NotificationsProjection};
use ticketflow_store::EventStore;
use ticketflow_testkit::cast::{alice, bob, carol};
use ticketflow_testkit::on_each_backend;
use ticketflow_testkit::world::*;
use uuid::Uuid;

use NotificationType::*;

/// One ticket's life; returns the world and the ticket's id.
///
/// 1. alice creates PROJ-1 for bob, mentioning carol: bob assigned, carol mentioned
/// 2. bob comments mentioning alice, the reporter: alice mentioned, once
/// 3. carol comments: bob (assignee) and alice (reporter) hear of it
/// 4. alice moves it to In Progress: bob (she is the reporter herself)
/// 5. alice hands it from bob to carol: bob unassigned, carol assigned
/// 6. carol unassigns herself: nobody
/// 7. bob moves it to Done: alice, the reporter (no assignee now)
/// 8. alice renames it: nobody
/// 9. bob rewrites the description, keeping carol's mention and adding
///    alice's: alice only
/// 10. alice deletes it: nobody
async fn story(backend: Backend) -> (World, Uuid) {
    let w = World::on(backend).await;
    let t = w
        .create_with(
            &alice(),
            NewTicket {
                ticket_id: Uuid::now_v7(),
                title: "Fix login bug".into(),
                description: "cc @carol".into(),
                priority: Priority::High,
                assignee_id: Some(bob().id),
                labels: vec![],
                status_id: None,
            },
        )
        .await;
    w.comment(&bob(), t, "@alice can you look?").await;
    w.comment(&carol(), t, "works for me").await;
    w.status(&alice(), t, 2).await;
    w.assign(&alice(), t, Some(&carol())).await;
    w.assign(&carol(), t, None).await;
    w.status(&bob(), t, 3).await;
    let rename = TicketChanges {
        title: Some("Fix login".into()),
        ..TicketChanges::default()
    };
    w.update(&alice(), t, rename).await;
    let describe = TicketChanges {
        description: Some("cc @carol and @alice.".into()),
        ..TicketChanges::default()
    };
    w.update(&bob(), t, describe).await;
    w.delete(&alice(), t).await;
    w.sync(&NotificationsProjection).await;
    (w, t)
}

/// (seq, type, message) of an item, as expected.
type Shown = (i64, NotificationType, &'static str);

/// (seq, type, message) of a list, as shown.
fn shown(items: &[Notification]) -> Vec<(i64, NotificationType, String)> {
    items
        .iter()
        .map(|n| (n.seq, n.notification_type, n.message.clone()))
        .collect()
}

fn expect(items: &[(i64, NotificationType, &str)]) -> Vec<(i64, NotificationType, String)> {
    items
        .iter()
        .map(|(s, t, m)| (*s, *t, m.to_string()))
        .collect()
}

fn seqs(items: &[Notification]) -> Vec<i64> {
    items.iter().map(|n| n.seq).collect()
}

async fn list(w: &World, user: Uuid) -> (i64, Vec<Notification>) {
    page(w, user, false, None, 50).await
}

async fn page(
    w: &World,
    user: Uuid,
    unread_only: bool,
    after: Option<i64>,
    limit: i64,
) -> (i64, Vec<Notification>) {
    w.reads
        .notifications(user, unread_only, after, limit)
        .await
        .expect("notifications")
}

async fn every_rule_end_to_end_with_contiguous_seqs(backend: Backend) {
    let (w, _) = story(backend).await;

    // Whose list, its unread count, and its items as shown.
    let cases: [(Actor, i64, &[Shown]); 3] = [
        (
            alice(),
            4,
            &[
                (4, Mentioned, "bob mentioned you in PROJ-1: Fix login"),
                (3, StatusChanged, "PROJ-1: Fix login bug moved to Done"),
                (2, CommentAdded, "carol commented on PROJ-1: Fix login bug"),
                (1, Mentioned, "bob mentioned you in PROJ-1: Fix login bug"),
            ],
        ),
        (
            bob(),
            4,
            &[
                (
                    4,
                    TicketUnassigned,
                    "You were unassigned from PROJ-1: Fix login bug",
                ),
                (
                    3,
                    StatusChanged,
                    "PROJ-1: Fix login bug moved to In Progress",
                ),
                (2, CommentAdded, "carol commented on PROJ-1: Fix login bug"),
                (
                    1,
                    TicketAssigned,
                    "You were assigned to PROJ-1: Fix login bug",
                ),
            ],
        ),
        (
            carol(),
            2,
            &[
                (
                    2,
                    TicketAssigned,
                    "You were assigned to PROJ-1: Fix login bug",
                ),
                (1, Mentioned, "alice mentioned you in PROJ-1: Fix login bug"),
            ],
        ),
    ];
    for (user, unread_count, expected) in cases {
        let (unread, items) = list(&w, user.id).await;
        assert_eq!(unread, unread_count, "{}'s unread", user.username);
        assert_eq!(shown(&items), expect(expected), "{}'s list", user.username);
    }

    for (user, head) in [(alice(), 4), (bob(), 4), (carol(), 2)] {
        assert_eq!(
            w.reads.notification_head(user.id).await.expect("head"),
            head
        );
    }
    assert_eq!(
        w.reads
            .notification_head(Uuid::now_v7())
            .await
            .expect("head"),
        0
    );
}

async fn a_notification_carries_its_ticket_event_and_stable_id(backend: Backend) {
    let (w, t) = story(backend).await;
    let (_, bobs) = list(&w, bob().id).await;
    let assigned = bobs.last().expect("bob's first");
    let created = &w.store.stream_events(t, 0, 1).await.expect("events")[0];
    assert_eq!(
        assigned,
        &Notification {
            id: notification_id(created.event_id, bob().id),
            seq: 1,
            notification_type: TicketAssigned,
            title: "Ticket Assigned".into(),
            message: "You were assigned to PROJ-1: Fix login bug".into(),
            ticket_id: Some(t),
            ticket_key: Some("PROJ-1".into()),
            project_id: Some(w.project_id),
            read: false,
            timestamp: created.occurred_at,
        }
    );
    let json = serde_json::to_value(assigned).expect("json");
    let mut keys: Vec<&str> = json
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "id",
            "message",
            "notification_type",
            "project_id",
            "read",
            "seq",
            "ticket_id",
            "ticket_key",
            "timestamp",
            "title"
        ]
    );
    assert_eq!(json["notification_type"], "ticket_assigned");
    // The same event never notifies two users under one id.
    assert_ne!(
        notification_id(created.event_id, bob().id),
        notification_id(created.event_id, carol().id)
    );
}

async fn lists_page_newest_first(backend: Backend) {
    let (w, _) = story(backend).await;
    let bob = bob().id;
    let (unread, first) = page(&w, bob, false, None, 3).await;
    assert_eq!((unread, seqs(&first)), (4, vec![4, 3, 2]));
    let (_, second) = page(&w, bob, false, Some(2), 3).await;
    assert_eq!(seqs(&second), vec![1]);
    let (unread, past_the_end) = page(&w, bob, false, Some(1), 3).await;
    assert_eq!((unread, seqs(&past_the_end)), (4, vec![]));

    let replay = w
        .reads
        .notification_messages(bob, 1, 2)
        .await
        .expect("after");
    let replayed: Vec<i64> = replay.iter().map(|(seq, _)| *seq).collect();
    assert_eq!(replayed, vec![2, 3]);

    let (unread, nobody) = page(&w, Uuid::now_v7(), false, None, 3).await;
    assert_eq!((unread, nobody.len()), (0, 0));
}

async fn reading_one_notification(backend: Backend) {
    let (w, _) = story(backend).await;
    let (_, bobs) = list(&w, bob().id).await;
    let second = bobs.iter().find(|n| n.seq == 2).expect("seq 2").id;

    assert!(w.reads.mark_read(bob().id, second).await.expect("read"));
    let (unread, bobs) = list(&w, bob().id).await;
    assert_eq!(unread, 3);
    let read: Vec<(i64, bool)> = bobs.iter().map(|n| (n.seq, n.read)).collect();
    assert_eq!(read, vec![(4, false), (3, false), (2, true), (1, false)]);
    let (unread, unread_items) = page(&w, bob().id, true, None, 50).await;
    assert_eq!((unread, seqs(&unread_items)), (3, vec![4, 3, 1]));
    let (_, unread_page) = page(&w, bob().id, true, Some(3), 50).await;
    assert_eq!(seqs(&unread_page), vec![1]);

    // Again: still fine, nothing changes.
    assert!(w.reads.mark_read(bob().id, second).await.expect("again"));
    assert_eq!(w.reads.unread_count(bob().id).await.expect("count"), 3);
    // Someone else's, or no such notification: not found.
    assert!(!w
        .reads
        .mark_read(alice().id, second)
        .await
        .expect("other's"));
    assert!(!w
        .reads
        .mark_read(bob().id, Uuid::now_v7())
        .await
        .expect("unknown"));
    assert_eq!(list(&w, alice().id).await.0, 4);
}

async fn reading_all_covers_what_exists_not_what_comes(backend: Backend) {
    let (w, _) = story(backend).await;
    let (_, bobs) = list(&w, bob().id).await;
    let first = bobs.last().expect("first").id;
    assert!(w.reads.mark_read(bob().id, first).await.expect("one"));

    assert_eq!(w.reads.mark_all_read(bob().id).await.expect("all"), 4);
    let (unread, bobs) = list(&w, bob().id).await;
    assert_eq!(unread, 0);
    assert!(bobs.iter().all(|n| n.read));
    // The read-all mark covers the single flag, which is dropped.
    let flags = w
        .rows_where("notification_reads", "user_id", json!(bob().id))
        .await;
    assert_eq!(flags, Vec::<serde_json::Value>::new());
    // Marking one below the mark: found, already read, no flag stored.
    assert!(w.reads.mark_read(bob().id, first).await.expect("again"));
    assert_eq!(list(&w, bob().id).await.0, 0);
    // Others are untouched.
    assert_eq!(list(&w, alice().id).await.0, 4);

    // A new notification after read-all arrives unread.
    let t2 = w.create(&alice(), "Second", Some(&bob())).await;
    w.sync(&NotificationsProjection).await;
    let (unread, bobs) = list(&w, bob().id).await;
    assert_eq!(unread, 1);
    assert_eq!(
        shown(&bobs[..1]),
        expect(&[(5, TicketAssigned, "You were assigned to PROJ-2: Second")])
    );
    assert_eq!(bobs[0].ticket_id, Some(t2));
    assert!(!bobs[0].read);
    // Read-all with nothing new is harmless, and the mark never goes back.
    assert_eq!(w.reads.mark_all_read(bob().id).await.expect("all"), 5);
    assert_eq!(w.reads.mark_all_read(carol().id).await.expect("all"), 2);
    assert_eq!(
        w.reads.mark_all_read(Uuid::now_v7()).await.expect("nobody"),
        0
    );
}

async fn the_projections_ticket_state_follows_the_tickets(backend: Backend) {
    let (w, t) = story(backend).await;
    let live = w.create(&alice(), "Alive", None).await;
    w.sync(&NotificationsProjection).await;
    let states = w.dump("rm_notify_tickets").await;
    let ids: Vec<&serde_json::Value> = states
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| &r["ticket_id"])
        .collect();
    // The deleted ticket's state is gone; the live one is kept.
    assert_eq!(ids, vec![&json!(live)]);
    assert_ne!(t, live);
}

on_each_backend!(
    every_rule_end_to_end_with_contiguous_seqs,
    a_notification_carries_its_ticket_event_and_stable_id,
    lists_page_newest_first,
    reading_one_notification,
    reading_all_covers_what_exists_not_what_comes,
    the_projections_ticket_state_follows_the_tickets,
);
