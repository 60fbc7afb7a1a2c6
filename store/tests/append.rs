//! The event store's guarantees, each checked against a real PostgreSQL and
//! a real SQLite file by one test body (see testkit's `backend`), and a few
//! that only concern PostgreSQL.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{SubsecRound, Utc};
use ticketflow_domain::project::ProjectPayload;
use ticketflow_domain::Role;
use ticketflow_store::pg::PgStore;
use ticketflow_store::{AsOf, EventStore, Loaded, StoreError, SNAPSHOT_EVERY};
use ticketflow_testkit::backend::Backend;
use ticketflow_testkit::builders::member;
use ticketflow_testkit::cast::{alice, bob};
use ticketflow_testkit::fixtures::{
    append_created, append_project, append_ticket, change_project, create_project, create_ticket,
    created, retitled,
};
use ticketflow_testkit::TestDb;
use uuid::Uuid;

ticketflow_testkit::on_both_backends!(
    reader_by_position_never_skips_a_late_commit,
    concurrent_creates_get_gap_free_numbers_and_seqs,
    a_stale_append_is_refused_with_the_current_version,
    a_long_ticket_loads_from_its_snapshot,
    a_taken_project_key_is_refused,
    an_append_decided_on_an_old_project_is_refused,
    a_ticket_is_loaded_as_of_a_version_or_a_time,
    the_log_reads_by_stream_project_and_position,
    membership_follows_the_project_events,
);

/// Trap 2: positions are taken at insert time but become visible at commit.
/// 40 writers in 40 projects append concurrently while a reader pages through the log by
/// position; the reader must see every event exactly once, in order, and positions are
/// contiguous. On PostgreSQL the writers share out over several stores, as over several
/// server instances: one store's committer batches its appends, and only separate
/// transactions can race on the global position. On SQLite one process owns the file,
/// and its batches race the readers.
async fn reader_by_position_never_skips_a_late_commit(backend: Backend) {
    const WRITERS: usize = 40;
    const APPENDS_PER_WRITER: usize = 25;
    const INSTANCES: usize = 8;
    let store = backend.store_with_pool(4).await;
    let mut instances = Vec::new();
    for _ in 0..INSTANCES {
        instances.push(backend.store_with_pool(4).await);
    }
    // A project per writer: appends to one project already serialise on its
    // row, so only separate projects race on the global position.
    let mut projects = Vec::new();
    for i in 0..WRITERS {
        projects.push(create_project(&*store, &format!("RACE{i}")).await);
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
                    append_ticket(&*store, project_id, ticket_id, Loaded::default(), events)
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
async fn concurrent_creates_get_gap_free_numbers_and_seqs(backend: Backend) {
    let store = backend.store().await;
    let project_id = create_project(&*store, "KEYS").await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { create_ticket(&*store, project_id).await.1.state })
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

async fn a_stale_append_is_refused_with_the_current_version(backend: Backend) {
    let store = backend.store().await;
    let store = &*store;
    let project_id = create_project(store, "CAS").await;
    let (id, v1) = create_ticket(store, project_id).await;
    append_ticket(
        store,
        project_id,
        id,
        v1.clone(),
        vec![retitled(1), retitled(2)],
    )
    .await
    .expect("first writer");
    let stale = append_ticket(store, project_id, id, v1, vec![retitled(3)]).await;
    assert!(
        matches!(stale, Err(StoreError::VersionConflict { current: 3 })),
        "{stale:?}"
    );
    let again = append_created(store, project_id, id).await;
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
async fn a_long_ticket_loads_from_its_snapshot(backend: Backend) {
    let store = backend.store().await;
    let store = &*store;
    let project_id = create_project(store, "LONG").await;
    let (id, mut state) = create_ticket(store, project_id).await;
    let mut n = 1;
    while n < 5_000 {
        // Uneven batches, so versions cross snapshot boundaries mid-batch.
        let batch: Vec<_> = (0..37.min(5_000 - n)).map(|i| retitled(n + i)).collect();
        n += batch.len();
        state = append_ticket(store, project_id, id, state, batch)
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
async fn a_taken_project_key_is_refused(backend: Backend) {
    let store = backend.store().await;
    let store = &*store;
    create_project(store, "DUP").await;
    let id = Uuid::now_v7();
    let result = append_project(store, id, "DUP").await;
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

/// Events decided against a project that has since changed (a member was
/// added, say) are refused, and the ticket does not move; decided against its
/// current version, they land.
async fn an_append_decided_on_an_old_project_is_refused(backend: Backend) {
    let store = backend.store().await;
    let store = &*store;
    let project_id = create_project(store, "MOVED").await;
    let (id, ticket) = create_ticket(store, project_id).await;
    let decided_on = store.load_project(project_id).await.expect("project");
    let bob = member(&bob(), Role::Member);
    change_project(
        store,
        project_id,
        ProjectPayload::MemberAdded { member: bob },
    )
    .await;

    let append = |before: Loaded<_>| ticketflow_store::Append {
        stream_id: id,
        project_id,
        before,
        events: vec![retitled(1)],
        metadata: Default::default(),
    };
    let stale = store
        .append_ticket_if_project_at(append(ticket.clone()), decided_on.version)
        .await;
    let current = decided_on.version + 1;
    assert!(
        matches!(stale, Err(StoreError::ProjectMoved { current: c }) if c == current),
        "{stale:?}"
    );
    assert_eq!(store.load_ticket(id).await.expect("load").version, 1);

    let fresh = store
        .append_ticket_if_project_at(append(ticket), current)
        .await
        .expect("decided on the current project");
    assert_eq!(fresh.state.title, "title 1");
    assert_eq!(fresh.events.len(), 1);
}

/// A ticket's past, by version and by time (inclusive); `None` before it
/// existed.
async fn a_ticket_is_loaded_as_of_a_version_or_a_time(backend: Backend) {
    let store = backend.store().await;
    let store = &*store;
    let project_id = create_project(store, "PAST").await;
    let id = Uuid::now_v7();
    let start = Utc::now().trunc_subsecs(6) - chrono::Duration::seconds(10);
    let at = |s: i64| start + chrono::Duration::seconds(s);
    let mut events = vec![created(project_id, id), retitled(1), retitled(2)];
    for (i, event) in events.iter_mut().enumerate() {
        event.meta.occurred_at = at(i as i64);
    }
    append_ticket(store, project_id, id, Loaded::default(), events)
        .await
        .expect("append");

    let as_of = |a| async move { store.load_ticket_as_of(id, a).await.expect("as of") };
    let second = as_of(AsOf::Time(at(1))).await.expect("existed");
    assert_eq!(
        (second.version, second.state.title.as_str()),
        (2, "title 1")
    );
    let between = as_of(AsOf::Time(at(1) + chrono::Duration::microseconds(500))).await;
    assert_eq!(between.expect("existed").version, 2);
    assert!(as_of(AsOf::Time(at(0) - chrono::Duration::microseconds(1)))
        .await
        .is_none());
    let first = as_of(AsOf::Version(1)).await.expect("existed");
    assert_eq!((first.version, first.state.title.as_str()), (1, "t"));
    assert_eq!(first.replayed, 1);
    assert!(as_of(AsOf::Version(0)).await.is_none());
    let latest = as_of(AsOf::Version(99)).await.expect("existed");
    assert_eq!(latest.state.title, "title 2");
    assert_eq!(
        latest.last_position,
        store.head_position().await.expect("head")
    );
}

/// One stream after a version, one project (its own and its tickets'
/// events) after a position, and everything after a position, with limits.
async fn the_log_reads_by_stream_project_and_position(backend: Backend) {
    let store = backend.store().await;
    let store = &*store;
    let ours = create_project(store, "OURS").await;
    let theirs = create_project(store, "THEIRS").await;
    let id = Uuid::now_v7();
    let events = vec![created(ours, id), retitled(1), retitled(2)];
    let appended = append_ticket(store, ours, id, Loaded::default(), events)
        .await
        .expect("append");
    create_ticket(store, theirs).await;

    let versions = |events: Vec<ticketflow_store::StoredEvent>| {
        events.iter().map(|e| e.version).collect::<Vec<_>>()
    };
    let stream = store.stream_events(id, 1, 100).await.expect("stream");
    assert_eq!(versions(stream), vec![2, 3]);
    let limited = store.stream_events(id, 0, 2).await.expect("stream");
    assert_eq!(versions(limited), vec![1, 2]);

    let project = store.project_events(ours, 0, 100).await.expect("project");
    let kinds: Vec<_> = project
        .iter()
        .map(|e| (e.stream_type.as_str(), e.seq))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("project", None),
            ("project", None),
            ("ticket", Some(1)),
            ("ticket", Some(2)),
            ("ticket", Some(3)),
        ]
    );
    assert!(project.iter().all(|e| e.project_id == ours));
    let after = store
        .project_events(ours, project[2].position, 100)
        .await
        .expect("project");
    assert_eq!(after.len(), 2);

    let all = store.read_all(0, 100).await.expect("all");
    let positions: Vec<i64> = all.iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=8).collect::<Vec<_>>());
    assert_eq!(store.read_all(6, 1).await.expect("page")[0].position, 7);
    let mine = &all[6];
    assert_eq!(mine.stream_id, id);
    assert_eq!(mine.position, appended.last_position);
    let title: ticketflow_domain::event::Event<ticketflow_domain::ticket::TicketPayload> =
        mine.decode().expect("decode");
    assert!(matches!(
        title.payload,
        ticketflow_domain::ticket::TicketPayload::TicketTitleChanged { ref title } if title == "title 2"
    ));
    assert_eq!(mine.actor.username, "alice");
}

/// The inline index: membership and the projects a user belongs to move with
/// the project's events.
async fn membership_follows_the_project_events(backend: Backend) {
    let store = backend.store().await;
    let store = &*store;
    let alice = alice().id;
    let first = create_project(store, "FIRST").await;
    let second = create_project(store, "SECOND").await;
    let bob = bob().id;
    assert_eq!(
        store.membership(first, alice).await.expect("m"),
        Some(Role::Admin)
    );
    assert_eq!(store.membership(first, bob).await.expect("m"), None);

    let added = member(&ticketflow_testkit::cast::bob(), Role::Member);
    change_project(store, second, ProjectPayload::MemberAdded { member: added }).await;
    assert_eq!(
        store.membership(second, bob).await.expect("m"),
        Some(Role::Member)
    );
    let listed = store.projects_of(alice).await.expect("projects");
    let keys: Vec<_> = listed.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, vec!["FIRST", "SECOND"]);
    assert_eq!(listed[0].project_id, first);
    assert_eq!(listed[0].statuses, ticketflow_domain::default_statuses());
    let bobs = store.projects_of(bob).await.expect("projects");
    assert_eq!(bobs.len(), 1);
    assert_eq!((bobs[0].project_id, bobs[0].role), (second, Role::Member));

    let removed = ProjectPayload::MemberRemoved {
        user_id: bob,
        username: "bob".into(),
    };
    change_project(store, second, removed).await;
    assert_eq!(store.membership(second, bob).await.expect("m"), None);
    assert!(store.projects_of(bob).await.expect("projects").is_empty());
}
