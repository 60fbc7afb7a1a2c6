//! A user's inbox stream (operator notices): appended with the same version
//! compare-and-set and positions as every stream, logged under the nil
//! project, so no project's feed shows it. On both backends.

use ticketflow_domain::inbox::{operator, Inbox, InboxCommand, NO_PROJECT};
use ticketflow_domain::EventMeta;
use ticketflow_store::{Append, Metadata, StoreError};
use ticketflow_testkit::backend::Backend;
use ticketflow_testkit::cast::{at, bob};
use ticketflow_testkit::fixtures::create_project;

ticketflow_testkit::on_both_backends!(an_inbox_is_a_stream_of_its_own_under_no_project);

fn notice(inbox: &Inbox, title: &str) -> Vec<ticketflow_domain::InboxEvent> {
    inbox
        .decide(InboxCommand::SendNotice {
            meta: EventMeta {
                actor: operator(),
                occurred_at: at(0),
            },
            user: bob(),
            title: title.into(),
            message: "Your report is ready!".into(),
        })
        .expect("decide")
}

async fn an_inbox_is_a_stream_of_its_own_under_no_project(backend: Backend) {
    let store = backend.store().await;
    let project = create_project(&*store, "PROJ").await;
    let before = store.load_inbox(bob().id).await.expect("load");
    assert_eq!(before.version, 0);
    let events = notice(&before.state, "System Alert");
    let append = |before, events| Append {
        stream_id: bob().id,
        project_id: NO_PROJECT,
        before,
        events,
        metadata: Metadata::default(),
    };
    let committed = store
        .append_inbox(append(before.clone(), events.clone()))
        .await
        .expect("append");
    let stored = &committed.events[0];
    assert_eq!(
        (
            stored.stream_type.as_str(),
            stored.project_id,
            stored.stream_id
        ),
        ("inbox", NO_PROJECT, bob().id)
    );
    assert_eq!((stored.version, stored.seq), (1, None));
    assert_eq!(stored.event_type, "NoticeSent");
    assert_eq!(stored.actor, operator());

    // The compare-and-set: a second append decided on version 0 loses.
    let stale = store.append_inbox(append(before, events)).await;
    assert!(
        matches!(stale, Err(StoreError::VersionConflict { current: 1 })),
        "{stale:?}"
    );

    let loaded = store.load_inbox(bob().id).await.expect("load");
    assert_eq!((loaded.version, loaded.state.user_id), (1, bob().id));
    assert_eq!(loaded.last_position, stored.position);
    let second = notice(&loaded.state, "Again");
    store
        .append_inbox(append(loaded, second))
        .await
        .expect("second");

    let stream = store.stream_events(bob().id, 0, 10).await.expect("stream");
    assert_eq!(stream.len(), 2);
    assert!(store
        .project_events(project, 0, 100)
        .await
        .expect("feed")
        .iter()
        .all(|e| e.stream_type == "project"));
    let all = store.read_all(0, 100).await.expect("all");
    assert_eq!(all.iter().filter(|e| e.stream_type == "inbox").count(), 2);
}
