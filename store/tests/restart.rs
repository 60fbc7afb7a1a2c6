//! What outlives the store: data after closing and reopening (on SQLite, the
//! file itself), and the watch that follows commits. Both backends, see
//! `support`.

use std::time::Duration;

use chrono::Utc;
use ticketflow_store::{Claim, Loaded, NewUser, StoredResponse, User};
use ticketflow_testkit::fixtures::{
    append_created, append_ticket, create_project, created, retitled,
};
use uuid::Uuid;

use ticketflow_testkit::backend::Backend;

ticketflow_testkit::on_both_backends!(
    data_survives_closing_and_reopening,
    the_watch_head_moves_on_commit,
);

/// Long enough for PostgreSQL's LISTEN connection to come up; a guard
/// against hanging, not a synchronisation.
const PATIENCE: Duration = Duration::from_secs(10);

async fn data_survives_closing_and_reopening(backend: Backend) {
    let store = backend.store().await;
    let project_id = create_project(&*store, "KEEP").await;
    let ticket_id = Uuid::now_v7();
    let events = vec![created(project_id, ticket_id), retitled(1)];
    append_ticket(&*store, project_id, ticket_id, Loaded::default(), events)
        .await
        .expect("append");
    let user = User {
        user_id: Uuid::now_v7(),
        username: "grace".into(),
        display_name: "Grace".into(),
        created_at: Utc::now(),
    };
    let new = NewUser {
        user: user.clone(),
        password_hash: "hash".into(),
    };
    store.create_user(new).await.expect("user");
    let response = StoredResponse {
        status: 200,
        headers: vec![],
        body: b"kept".to_vec(),
    };
    let (now, horizon) = (Utc::now(), Utc::now() - chrono::Duration::hours(1));
    let claimed = store.claim(user.user_id, "k", b"req", now, horizon, horizon);
    assert_eq!(claimed.await.expect("claim"), Claim::Acquired);
    store
        .complete(user.user_id, "k", &response)
        .await
        .expect("complete");
    let before = store.read_all(0, 100).await.expect("read");
    drop(store);
    backend.close();

    let store = backend.store().await;
    assert_eq!(store.read_all(0, 100).await.expect("read"), before);
    let ticket = store.load_ticket(ticket_id).await.expect("load");
    assert_eq!(
        (ticket.version, ticket.state.title.as_str()),
        (2, "title 1")
    );
    let found = store.user_by_username("grace").await.expect("user");
    assert_eq!(found.expect("grace exists").user.user_id, user.user_id);
    let replayed = store.claim(user.user_id, "k", b"req", now, horizon, horizon);
    assert_eq!(replayed.await.expect("claim"), Claim::Done(response));

    // The counters carry on where they stopped: position, number, seq.
    let next = Uuid::now_v7();
    let appended = append_created(&*store, project_id, next)
        .await
        .expect("append after reopening");
    assert_eq!(appended.state.key, "KEEP-2");
    assert_eq!(appended.last_position, before.len() as i64 + 1);
    let events = store.stream_events(next, 0, 10).await.expect("events");
    assert_eq!(events[0].seq, Some(3));
}

async fn the_watch_head_moves_on_commit(backend: Backend) {
    let store = backend.store().await;
    let mut watch = backend.watch().await;
    let project_id = create_project(&*store, "SEEN").await;
    let head = store.head_position().await.expect("head");
    if backend.is_sqlite() {
        // Raised by the writer before it answers the append.
        assert_eq!(*watch.head.borrow(), head);
    }
    let seen = tokio::time::timeout(PATIENCE, watch.head.wait_for(|h| *h >= head));
    seen.await.expect("the head moved").expect("watching");

    let ticket_id = Uuid::now_v7();
    let events = vec![created(project_id, ticket_id)];
    let appended = append_ticket(&*store, project_id, ticket_id, Loaded::default(), events)
        .await
        .expect("append");
    let position = appended.last_position;
    let seen = tokio::time::timeout(PATIENCE, watch.head.wait_for(|h| *h >= position));
    seen.await.expect("the head moved").expect("watching");

    backend.announce_checkpoint("tickets", position).await;
    let reached = |map: &std::collections::BTreeMap<String, i64>| {
        map.get("tickets").is_some_and(|p| *p >= position)
    };
    let seen = tokio::time::timeout(PATIENCE, watch.checkpoints.wait_for(reached));
    seen.await.expect("the checkpoint moved").expect("watching");
}
