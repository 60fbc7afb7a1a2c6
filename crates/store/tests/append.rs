//! The event store's guarantees, checked against a real PostgreSQL.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ticketflow_store::pg::PgStore;
use ticketflow_store::{AsOf, EventStore, Loaded, StoreError, SNAPSHOT_EVERY};
use ticketflow_testkit::fixtures::{
    append_project, append_ticket, create_project, created, retitled,
};
use ticketflow_testkit::TestDb;
use uuid::Uuid;

/// Trap 2: positions are taken at insert time but become visible at commit.
/// 40 writers in 40 projects append concurrently while a reader pages through the log by
/// position; the reader must see every event exactly once, in order. The writers share
/// out over several stores, as over several server instances: one store's committers
/// batch its appends, and only separate transactions can race on the global position.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reader_by_position_never_skips_a_late_commit() {
    const WRITERS: usize = 40;
    const APPENDS_PER_WRITER: usize = 25;
    const INSTANCES: usize = 8;
    let db = TestDb::create().await;
    let store = Arc::new(db.store_with_pool(4).await);
    let mut instances = Vec::new();
    for _ in 0..INSTANCES {
        instances.push(Arc::new(db.store_with_pool(4).await));
    }
    // A project per writer: appends to one project already serialise on its
    // row, so only separate projects race on the global position.
    let mut projects = Vec::new();
    for i in 0..WRITERS {
        projects.push(create_project(&store, &format!("RACE{i}")).await);
    }
    let baseline = store.head_position().await.expect("head");

    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let expected = WRITERS * APPENDS_PER_WRITER * 2;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
            let mut seen = Vec::new();
            let mut cursor = baseline;
            while seen.len() < expected && tokio::time::Instant::now() < deadline {
                for event in store.read_all(cursor, 100).await.expect("read") {
                    assert!(event.position > cursor, "positions go forward");
                    cursor = event.position;
                    seen.push(event.event_id);
                }
                tokio::task::yield_now().await;
            }
            seen
        })
    };
    let writers: Vec<_> = projects
        .into_iter()
        .enumerate()
        .map(|(i, project_id)| {
            let store = instances[i % INSTANCES].clone();
            tokio::spawn(async move {
                for _ in 0..APPENDS_PER_WRITER {
                    let ticket_id = Uuid::now_v7();
                    let events = vec![created(project_id, ticket_id), retitled(1)];
                    append_ticket(&store, project_id, ticket_id, Loaded::default(), events)
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
    let seen = reader.await.expect("reader");

    let all = store.read_all(baseline, 1_000_000).await.expect("read all");
    assert_eq!(all.len(), WRITERS * APPENDS_PER_WRITER * 2);
    let unique: BTreeSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "the reader saw an event twice");
    let ids: Vec<Uuid> = all.iter().map(|e| e.event_id).collect();
    let first_difference = seen.iter().zip(&ids).position(|(a, b)| a != b);
    assert_eq!(
        first_difference, None,
        "the reader missed or reordered events"
    );
    assert_eq!(seen.len(), ids.len(), "the reader missed events");
    let positions: Vec<i64> = all.iter().map(|e| e.position).collect();
    let contiguous: Vec<i64> = (baseline + 1..=baseline + all.len() as i64).collect();
    assert_eq!(positions, contiguous, "positions have gaps");
}

/// Trap 8 and the channel seq: numbers and seqs come from the project row in
/// the appending transaction, so concurrent creates get 1..N exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_get_gap_free_numbers_and_seqs() {
    let db = TestDb::create().await;
    let store = Arc::new(db.store().await);
    let project_id = create_project(&store, "KEYS").await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let id = Uuid::now_v7();
                append_ticket(
                    &store,
                    project_id,
                    id,
                    Loaded::default(),
                    vec![created(project_id, id)],
                )
                .await
                .expect("append")
                .state
            })
        })
        .collect();
    let mut keys = Vec::new();
    for t in tasks {
        let ticket = t.await.expect("task");
        assert_eq!(ticket.key, format!("KEYS-{}", ticket.number));
        keys.push(ticket.number);
    }
    keys.sort_unstable();
    assert_eq!(keys, (1..=50).collect::<Vec<u64>>());

    let events = store
        .project_events(project_id, 0, 1000)
        .await
        .expect("events");
    let mut seqs: Vec<i64> = events.iter().filter_map(|e| e.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=50).collect::<Vec<i64>>());
    assert!(events
        .iter()
        .filter(|e| e.stream_type == "project")
        .all(|e| e.seq.is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_append_is_refused_with_the_current_version() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let project_id = create_project(&store, "CAS").await;
    let id = Uuid::now_v7();
    let v1 = append_ticket(
        &store,
        project_id,
        id,
        Loaded::default(),
        vec![created(project_id, id)],
    )
    .await
    .expect("create");
    append_ticket(
        &store,
        project_id,
        id,
        v1.clone(),
        vec![retitled(1), retitled(2)],
    )
    .await
    .expect("first writer");
    let stale = append_ticket(&store, project_id, id, v1, vec![retitled(3)]).await;
    assert!(
        matches!(stale, Err(StoreError::VersionConflict { current: 3 })),
        "{stale:?}"
    );
    let again = append_ticket(
        &store,
        project_id,
        id,
        Loaded::default(),
        vec![created(project_id, id)],
    )
    .await;
    assert!(
        matches!(again, Err(StoreError::VersionConflict { current: 3 })),
        "{again:?}"
    );
    let versions: Vec<i64> = store
        .stream_events(id, 0, 100)
        .await
        .expect("events")
        .iter()
        .map(|e| e.version)
        .collect();
    assert_eq!(versions, vec![1, 2, 3]);
}

/// Trap 7: a 5,000-event ticket loads from its snapshot, replaying fewer
/// than SNAPSHOT_EVERY events, and the state equals a full replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_ticket_loads_from_its_snapshot() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let project_id = create_project(&store, "LONG").await;
    let id = Uuid::now_v7();
    let mut state = append_ticket(
        &store,
        project_id,
        id,
        Loaded::default(),
        vec![created(project_id, id)],
    )
    .await
    .expect("create");
    let mut n = 1;
    while n < 5_000 {
        // Uneven batches, so versions cross snapshot boundaries mid-batch.
        let batch: Vec<_> = (0..37.min(5_000 - n)).map(|i| retitled(n + i)).collect();
        n += batch.len();
        state = append_ticket(&store, project_id, id, state, batch)
            .await
            .expect("append");
    }
    let loaded = store.load_ticket(id).await.expect("load");
    assert_eq!(loaded.version, 5_000);
    assert!(
        loaded.replayed < SNAPSHOT_EVERY as usize,
        "replayed {}",
        loaded.replayed
    );
    let full = store
        .load_ticket_as_of(id, AsOf::Version(5_000))
        .await
        .expect("replay")
        .expect("exists");
    assert_eq!(full.replayed, 5_000);
    assert_eq!(loaded.state, full.state);
    assert_eq!(loaded.state.title, "title 4999");
    assert_eq!(
        loaded.last_position,
        store.head_position().await.expect("head")
    );
}

/// Several instances starting at once migrate safely.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_migrations_all_succeed() {
    let db = TestDb::create().await;
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move {
                let store = PgStore::connect(&url, 2).expect("pool");
                store.migrate().await
            })
        })
        .collect();
    for run in runs {
        run.await.expect("task").expect("migrate");
    }
    let store = db.store().await;
    assert_eq!(store.head_position().await.expect("head"), 0);
}

/// A second project with a taken key appends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_project_key_is_refused() {
    let db = TestDb::create().await;
    let store = db.store().await;
    create_project(&store, "DUP").await;
    let id = Uuid::now_v7();
    let result = append_project(&store, id, "DUP").await;
    assert!(
        matches!(result, Err(StoreError::Taken("project_key"))),
        "{result:?}"
    );
    assert!(store
        .stream_events(id, 0, 10)
        .await
        .expect("events")
        .is_empty());
}

/// Events are only ever written through stores that wait for the WAL flush;
/// the derived-data store (workers) does not wait, and says so.
#[tokio::test]
async fn only_the_derived_data_store_commits_asynchronously() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let derived = store.for_derived_data(2).expect("derived store");
    let setting = |store: PgStore| async move {
        let client = store.pool().get().await.expect("connection");
        let row = client
            .query_one("SHOW synchronous_commit", &[])
            .await
            .expect("show");
        row.get::<_, String>(0)
    };
    assert_eq!(setting(store).await, "on");
    assert_eq!(setting(derived).await, "off");
}
