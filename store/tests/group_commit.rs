//! Group commit of ticket appends, against a real PostgreSQL: many appends
//! share a transaction, yet each keeps its own outcome.
//!
//! To put appends in one batch for certain, a test holds the head row (as a
//! long commit would): the committer blocks on it, the appends sent meanwhile
//! queue up, and once the row is released they are taken as one batch.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use ticketflow_domain::ticket::{Ticket, TicketEvent};
use ticketflow_store::pg::PgStore;
use ticketflow_store::{Append, Committed, EventStore, Loaded, Metadata, StoreError};
use ticketflow_testkit::fixtures::{create_project, create_ticket, created, retitled};
use ticketflow_testkit::TestDb;
use uuid::Uuid;

fn append(
    project_id: Uuid,
    ticket_id: Uuid,
    before: Loaded<Ticket>,
    events: Vec<TicketEvent>,
) -> Append<Ticket, TicketEvent> {
    Append {
        stream_id: ticket_id,
        project_id,
        before,
        events,
        metadata: Metadata::default(),
    }
}

async fn new_ticket(store: &PgStore, project_id: Uuid) -> Loaded<Ticket> {
    create_ticket(store, project_id).await.1
}

/// The transaction that wrote each event (PostgreSQL's `xmin`), by position.
async fn writers(db: &TestDb) -> BTreeMap<i64, String> {
    let client = db.client().await;
    let rows = client
        .query("SELECT position, xmin::text FROM events", &[])
        .await
        .expect("xmin");
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

/// Holds the head row until released.
struct HeadHeld {
    client: tokio_postgres::Client,
    /// Outside the holding transaction, which would see one snapshot of the
    /// activity statistics throughout.
    observer: tokio_postgres::Client,
}

impl HeadHeld {
    async fn take(db: &TestDb) -> Self {
        let client = db.client().await;
        client
            .batch_execute("BEGIN; SELECT position FROM event_log_head FOR UPDATE")
            .await
            .expect("hold the head");
        Self {
            client,
            observer: db.client().await,
        }
    }

    /// Waits until `n` other transactions wait on a lock: a committer that
    /// waits is stuck, so whatever is sent from now on queues for its next
    /// batch.
    async fn wait_for_blocked(&self, n: i64) {
        for _ in 0..1000 {
            let waiting: i64 = self
                .observer
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                    &[],
                )
                .await
                .expect("activity")
                .get(0);
            if waiting >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the committer never blocked on the head row");
    }

    async fn release(self) {
        self.client
            .batch_execute("ROLLBACK")
            .await
            .expect("release");
    }
}

/// Blocks the committer behind the held head row, on a batch of one new
/// ticket, so the next appends all queue for one batch.
async fn stall_committer(
    store: &Arc<PgStore>,
    db: &TestDb,
    project_id: Uuid,
) -> (HeadHeld, tokio::task::JoinHandle<()>) {
    let head = HeadHeld::take(db).await;
    let store = store.clone();
    let blocked = tokio::spawn(async move {
        new_ticket(&store, project_id).await;
    });
    head.wait_for_blocked(1).await;
    (head, blocked)
}

/// Polls `sends` once, which queues every append behind the stalled
/// committer, then lets the committer go and waits for the outcomes.
async fn queue_then_release<F: std::future::Future>(
    sends: F,
    head: HeadHeld,
    blocked: tokio::task::JoinHandle<()>,
) -> F::Output {
    let mut sends = std::pin::pin!(sends);
    assert!(
        futures::poll!(&mut sends).is_pending(),
        "nothing can commit yet"
    );
    head.release().await;
    blocked.await.expect("blocked append");
    sends.await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_commit_once_each_with_contiguous_positions() {
    const APPENDS: usize = 400;
    let db = TestDb::create().await;
    let store = Arc::new(db.store().await);
    let mut projects = Vec::new();
    for i in 0..8 {
        projects.push(create_project(store.as_ref(), &format!("GC{i}")).await);
    }
    let baseline = store.head_position().await.expect("head");
    let appends = (0..APPENDS).map(|i| {
        let store = store.clone();
        let project_id = projects[i % projects.len()];
        tokio::spawn(async move {
            let id = Uuid::now_v7();
            let events = vec![created(project_id, id), retitled(i)];
            store
                .append_ticket(append(project_id, id, Loaded::default(), events))
                .await
        })
    });
    let committed: Vec<Committed<Ticket>> = join_all(appends)
        .await
        .into_iter()
        .map(|r| r.expect("task").expect("append"))
        .collect();

    let all = store.read_all(baseline, 100_000).await.expect("read");
    let positions: Vec<i64> = all.iter().map(|e| e.position).collect();
    let contiguous: Vec<i64> = (baseline + 1..=baseline + 2 * APPENDS as i64).collect();
    assert_eq!(positions, contiguous, "every event once, no gaps");
    // Each caller got exactly the events stored for it.
    let answered: BTreeSet<_> = committed
        .iter()
        .flat_map(|c| {
            c.events
                .iter()
                .map(|e| (e.position, e.event_id, e.stream_id))
        })
        .collect();
    let stored: BTreeSet<_> = all
        .iter()
        .map(|e| (e.position, e.event_id, e.stream_id))
        .collect();
    assert_eq!(answered, stored);
    // Ticket numbers per project are 1..N, in position order.
    for project_id in &projects {
        let mut numbers: Vec<u64> = committed
            .iter()
            .filter(|c| c.state.project_id == *project_id)
            .map(|c| c.state.number)
            .collect();
        numbers.sort_unstable();
        assert_eq!(
            numbers,
            (1..=(APPENDS / projects.len()) as u64).collect::<Vec<_>>()
        );
        let seqs: Vec<i64> = all
            .iter()
            .filter(|e| e.project_id == *project_id)
            .filter_map(|e| e.seq)
            .collect();
        assert_eq!(
            seqs,
            (1..=seqs.len() as i64).collect::<Vec<_>>(),
            "seq follows position"
        );
    }
    let transactions: BTreeSet<String> = writers(&db).await.into_values().collect();
    assert!(
        transactions.len() < APPENDS,
        "{APPENDS} appends took {} transactions: nothing was batched",
        transactions.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stale_append_fails_alone_while_its_batch_commits() {
    let db = TestDb::create().await;
    let store = Arc::new(db.store().await);
    let project_id = create_project(store.as_ref(), "MIX").await;
    let mut tickets = Vec::new();
    for _ in 0..10 {
        tickets.push(new_ticket(&store, project_id).await);
    }
    let (head, blocked) = stall_committer(&store, &db, project_id).await;

    // Half the appends are decided on the current version, half on a stale one.
    let sends = tickets.iter().enumerate().map(|(i, ticket)| {
        let mut before = ticket.clone();
        if i % 2 == 1 {
            before.version = 0;
        }
        store.append_ticket(append(
            project_id,
            ticket.state.id,
            before,
            vec![retitled(i)],
        ))
    });
    let outcomes = queue_then_release(join_all(sends), head, blocked).await;

    let mut fresh_positions = Vec::new();
    for (i, outcome) in outcomes.iter().enumerate() {
        if i % 2 == 1 {
            assert!(
                matches!(outcome, Err(StoreError::VersionConflict { current: 1 })),
                "{outcome:?}"
            );
        } else {
            let committed = outcome.as_ref().expect("a current append commits");
            assert_eq!(committed.state.version, 2);
            fresh_positions.push(committed.last_position());
        }
    }
    let writers = writers(&db).await;
    let batches: BTreeSet<&String> = fresh_positions.iter().map(|p| &writers[p]).collect();
    assert_eq!(batches.len(), 1, "the appends shared one transaction");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_appends_to_one_stream_in_a_batch_run_one_after_the_other() {
    let db = TestDb::create().await;
    let store = Arc::new(db.store().await);
    let project_id = create_project(store.as_ref(), "TWICE").await;
    let ticket = new_ticket(&store, project_id).await;
    let other = new_ticket(&store, project_id).await;
    let (head, blocked) = stall_committer(&store, &db, project_id).await;

    let id = ticket.state.id;
    let sends = vec![
        store.append_ticket(append(project_id, id, ticket.clone(), vec![retitled(1)])),
        store.append_ticket(append(project_id, id, ticket.clone(), vec![retitled(2)])),
        store.append_ticket(append(project_id, other.state.id, other, vec![retitled(3)])),
    ];
    let outcomes = queue_then_release(join_all(sends), head, blocked).await;

    assert_eq!(outcomes[0].as_ref().expect("first").state.title, "title 1");
    assert!(
        matches!(outcomes[1], Err(StoreError::VersionConflict { current: 2 })),
        "{:?}",
        outcomes[1]
    );
    assert_eq!(outcomes[2].as_ref().expect("other").state.version, 2);
    let versions: Vec<i64> = store
        .stream_events(id, 0, 10)
        .await
        .expect("events")
        .iter()
        .map(|e| e.version)
        .collect();
    assert_eq!(versions, [1, 2]);
}

/// Events decided against a project that has since changed (a member was
/// removed, say) are refused; decided against its current version, they land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_decided_on_an_old_project_is_refused() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let project_id = create_project(&store, "MOVED").await;
    let project = store.load_project(project_id).await.expect("project");
    let id = Uuid::now_v7();
    let stale = append(
        project_id,
        id,
        Loaded::default(),
        vec![created(project_id, id)],
    );
    let refused = store
        .append_ticket_if_project_at(stale.clone(), project.version - 1)
        .await;
    assert!(
        matches!(refused, Err(StoreError::ProjectMoved { current }) if current == project.version),
        "{refused:?}"
    );
    assert_eq!(store.load_ticket(id).await.expect("load").version, 0);
    let landed = store
        .append_ticket_if_project_at(stale, project.version)
        .await
        .expect("current project");
    assert_eq!(landed.state.number, 1, "the refused append took no number");
}

/// Another instance creates a ticket with the same id while this one's batch
/// is writing it: the batch's statements fail after some were sent, so it
/// commits nothing and is tried again, where that append alone is refused.
/// The instance's connections come back clean: later appends commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_that_fails_while_writing_commits_nothing_and_is_tried_again() {
    let db = TestDb::create().await;
    let (here, other) = (Arc::new(db.store().await), db.store().await);
    let project_id = create_project(here.as_ref(), "RACE").await;
    let (contested, bystander) = (Uuid::now_v7(), Uuid::now_v7());
    let head = HeadHeld::take(&db).await;
    // The other instance's stream row is written, uncommitted, behind the head.
    let first = tokio::spawn(async move {
        let events = vec![created(project_id, contested)];
        other
            .append_ticket(append(project_id, contested, Loaded::default(), events))
            .await
    });
    head.wait_for_blocked(1).await;
    let sends = [contested, bystander].map(|id| {
        let events = vec![created(project_id, id)];
        here.append_ticket(append(project_id, id, Loaded::default(), events))
    });
    let mut sends = std::pin::pin!(join_all(sends));
    assert!(futures::poll!(&mut sends).is_pending());
    // Waiting on the other's uncommitted row, and/or on the head.
    head.wait_for_blocked(2).await;
    head.release().await;

    let won = first.await.expect("task").expect("the other instance");
    let [lost, landed] = <[_; 2]>::try_from(sends.await).expect("two outcomes");
    assert!(
        matches!(lost, Err(StoreError::VersionConflict { current: 1 })),
        "{lost:?}"
    );
    let landed = landed.expect("the batch's other append commits on the retry");
    let stored = here.read_all(0, 100).await.expect("read");
    let tickets: Vec<(Uuid, i64)> = stored
        .iter()
        .filter(|e| e.stream_id != project_id)
        .map(|e| (e.stream_id, e.version))
        .collect();
    assert_eq!(tickets, [(contested, 1), (bystander, 1)], "each once");
    assert_eq!(won.state.number, 1);
    assert_eq!(landed.state.number, 2, "the failed try took no number");
    for _ in 0..4 {
        new_ticket(&here, project_id).await;
    }
}
