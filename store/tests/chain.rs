//! The log's hash chain on both backends: appends chain their events, from
//! several instances at once on PostgreSQL, and a log written before the
//! chain existed is chained by the migration, to the very hashes appends
//! would have given it.

use futures::future::join_all;
use ticketflow_store::chain::verify;
use ticketflow_store::{Append, Loaded, Metadata};
use ticketflow_testkit::backend::Backend;
use ticketflow_testkit::fixtures::{create_project, create_ticket, retitled};

ticketflow_testkit::on_both_backends!(
    concurrent_appends_chain_every_event,
    a_log_written_before_the_chain_is_chained_by_the_migration,
);

/// Writers on several instances (PostgreSQL) append to projects of their
/// own at once; the log verifies to its head, and what each append returned
/// is what the log holds.
async fn concurrent_appends_chain_every_event(backend: Backend) {
    const WRITERS: usize = 8;
    const APPENDS: usize = 10;
    let mut writers = Vec::new();
    for i in 0..WRITERS {
        let store = backend.store_with_pool(2).await;
        writers.push(async move {
            let project = create_project(&*store, &format!("CHAIN{i}")).await;
            let (ticket, mut loaded) = create_ticket(&*store, project).await;
            let mut committed = Vec::new();
            for n in 0..APPENDS {
                let append = Append {
                    stream_id: ticket,
                    project_id: project,
                    before: loaded,
                    events: vec![retitled(n)],
                    metadata: Metadata::default(),
                };
                let done = store.append_ticket(append).await.expect("append");
                loaded = Loaded {
                    version: done.state.version,
                    last_position: done.last_position(),
                    state: done.state,
                    replayed: 0,
                };
                committed.extend(done.events);
            }
            committed
        });
    }
    let committed: Vec<_> = join_all(writers).await.into_iter().flatten().collect();
    let store = backend.store().await;
    let head = store.head_position().await.expect("head");
    let (verified, recorded) = verify(&*store, 1, |_| {}).await.expect("an intact chain");
    assert_eq!(verified.position, head);
    assert_eq!(verified.events, head as u64);
    assert_eq!(recorded.hash, Some(verified.hash));
    let log = store.read_all(0, head).await.expect("the log");
    for event in &committed {
        let stored = log.iter().find(|e| e.position == event.position);
        assert!(event.hash.is_some());
        assert_eq!(stored.map(|e| e.hash), Some(event.hash));
    }
}

async fn a_log_written_before_the_chain_is_chained_by_the_migration(backend: Backend) {
    let store = backend.store().await;
    let project = create_project(&*store, "OLD").await;
    for _ in 0..3 {
        create_ticket(&*store, project).await;
    }
    let before = store.chain_head().await.expect("head");
    drop(store);

    // The log as the previous version left it: no hash columns, the chain's
    // migration and those after it (board snapshots) not applied.
    backend.close();
    backend
        .run_sql(
            "ALTER TABLE events DROP COLUMN hash;
             ALTER TABLE event_log_head DROP COLUMN hash;
             DROP TABLE board_snapshots;
             DELETE FROM refinery_schema_history WHERE version >= 10;",
            "ALTER TABLE events DROP COLUMN hash; DROP TABLE board_snapshots;
             PRAGMA user_version = 3;",
        )
        .await;
    if let Some(pg) = backend.pg_store().await {
        pg.migrate().await.expect("migrate");
    }
    let store = backend.store().await;
    let (verified, _) = verify(&*store, 1, |_| {}).await.expect("an intact chain");
    assert_eq!(verified.position, before.position);
    assert_eq!(Some(verified.hash), before.hash);
    assert_eq!(store.chain_head().await.expect("head"), before);

    // And appends go on chaining from it.
    create_ticket(&*store, project).await;
    let (verified, _) = verify(&*store, 1, |_| {}).await.expect("an intact chain");
    assert_eq!(verified.position, before.position + 1);
}
