//! `general` notifications: a project announcement notifies every other
//! member, an operator's notice its one user; each at the user's next seq,
//! about no ticket, live and replayed alike, and the same after a rebuild.

use serde_json::{json, Value};
use ticketflow_domain::NotificationType;
use ticketflow_projections::{Notification, NotificationsProjection};
use ticketflow_testkit::cast::{alice, bob, carol};
use ticketflow_testkit::on_each_backend;
use ticketflow_testkit::world::*;
use uuid::Uuid;

async fn list(w: &World, user: Uuid) -> Vec<Notification> {
    w.reads
        .notifications(user, false, None, 50)
        .await
        .expect("notifications")
        .1
}

/// bob is assigned a ticket (his seq 1), then alice announces and the
/// operator sends carol a notice.
async fn announced(backend: Backend) -> World {
    let w = World::on(backend).await;
    w.create(&alice(), "Fix login bug", Some(&bob())).await;
    w.sync(&NotificationsProjection).await;
    w.announce(&alice(), "System Alert", "Your report is ready!")
        .await;
    w.notice(&carol(), "Maintenance", "Tonight at 22:00").await;
    w
}

async fn an_announcement_notifies_every_other_member_at_their_next_seq(backend: Backend) {
    let w = announced(backend).await;
    let messages = w.sync_messages(&NotificationsProjection).await;

    let bobs = list(&w, bob().id).await;
    assert_eq!(bobs.len(), 2);
    let general = &bobs[0];
    assert_eq!(
        (
            general.seq,
            general.notification_type,
            general.title.as_str(),
            general.message.as_str()
        ),
        (
            2,
            NotificationType::General,
            "System Alert",
            "Your report is ready!"
        )
    );
    assert_eq!(
        (general.ticket_id, general.ticket_key.as_deref()),
        (None, None)
    );
    assert_eq!(general.project_id, Some(w.project_id));
    let json = serde_json::to_value(general).expect("json");
    assert_eq!(json["ticket_id"], Value::Null);
    assert_eq!(json["ticket_key"], Value::Null);
    assert_eq!(json["notification_type"], json!("general"));

    // carol: the announcement (seq 1), then the operator's notice (seq 2),
    // about no project.
    let carols = list(&w, carol().id).await;
    let shown: Vec<_> = carols
        .iter()
        .map(|n| (n.seq, n.title.as_str(), n.project_id))
        .collect();
    assert_eq!(
        shown,
        vec![
            (2, "Maintenance", None),
            (1, "System Alert", Some(w.project_id))
        ]
    );
    // The author hears nothing of their own announcement.
    assert!(list(&w, alice().id).await.is_empty());

    // Live messages are the replayed ones, byte for byte.
    for user in [bob(), carol()] {
        let live: Vec<(i64, String)> = messages
            .iter()
            .filter(|m| m.channel == ticketflow_nats::Channel::Notifications { user_id: user.id })
            .map(|m| (m.seq, m.json.clone()))
            .collect();
        let replayed = w
            .reads
            .notification_messages(user.id, 0, 100)
            .await
            .expect("replay");
        assert_eq!(&replayed[replayed.len() - live.len()..], &live[..]);
    }
}

async fn a_rebuild_reproduces_general_notifications(backend: Backend) {
    let w = announced(backend).await;
    w.sync(&NotificationsProjection).await;
    let before = w.dump_projection(&NotificationsProjection).await;
    w.reset(&NotificationsProjection).await;
    w.sync(&NotificationsProjection).await;
    assert_eq!(w.dump_projection(&NotificationsProjection).await, before);
    assert_eq!(list(&w, bob().id).await[0].title, "System Alert");
}

on_each_backend!(
    an_announcement_notifies_every_other_member_at_their_next_seq,
    a_rebuild_reproduces_general_notifications,
);
