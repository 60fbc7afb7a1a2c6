//! Projection workers over real NATS and PostgreSQL: at-least-once delivery
//! never applies an event twice, and competing instances never reorder.

use std::sync::Arc;
use std::time::Duration;

use ticketflow_nats::Bus;
use ticketflow_projections::worker::stream::{StreamProjectors, CONSUMER};
use ticketflow_projections::worker::Projector;
use ticketflow_projections::Projection;
use ticketflow_store::pg::PgStore;
use ticketflow_store::EventStore;
use ticketflow_testkit::fixtures::{append_ticket, create_project, create_ticket, retitled};
use ticketflow_testkit::{NatsServer, TestDb};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

async fn write_tickets(store: &PgStore, key: &str, tickets: usize, edits: usize) -> Vec<Uuid> {
    let project_id = create_project(store, key).await;
    let mut ids = Vec::new();
    for _ in 0..tickets {
        let (id, mut state) = create_ticket(store, project_id).await;
        for n in 0..edits {
            state = append_ticket(store, project_id, id, state, vec![retitled(n)])
                .await
                .expect("edit");
        }
        ids.push(id);
    }
    ids
}

fn tickets_projection() -> Arc<dyn Projection> {
    ticketflow_projections::by_name("tickets").expect("tickets projection")
}

fn start_projector(store: &PgStore, bus: &Bus) -> tokio::task::JoinHandle<()> {
    let worker = Projector::new(
        Arc::new(store.clone()),
        Arc::new(ticketflow_projections::PgReadStore::new(
            store.pool().clone(),
        )),
        bus.broker(),
        vec![tickets_projection()],
    );
    let workers = StreamProjectors { projector: worker };
    let stop = CancellationToken::new();
    tokio::spawn(workers.run(bus.clone(), store.pool().clone(), stop))
}

/// Waits (bounded) until the tickets projection has applied the log's head.
async fn wait_until_projected(store: &PgStore) {
    let head = store.head_position().await.expect("head");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let at = store.checkpoints().await.expect("checkpoints");
        if at.iter().any(|(n, p)| n == "tickets" && *p == head) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "projection did not catch up: {at:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The read model as text, row by row.
async fn tickets_table(db: &TestDb) -> Vec<String> {
    let client = db.client().await;
    let rows = client
        .query(
            "SELECT row_to_json(t)::text FROM rm_tickets t ORDER BY ticket_id",
            &[],
        )
        .await
        .expect("read model");
    rows.iter().map(|r| r.get(0)).collect()
}

/// A database and a nats-server of the test's own, and a relay from the
/// one's log to the other's stream.
type Pipeline = (
    TestDb,
    PgStore,
    Bus,
    tokio::task::JoinHandle<()>,
    NatsServer,
);

async fn pipeline(prefix: &str) -> Pipeline {
    let db = TestDb::create().await;
    let store = db.store().await;
    let nats = NatsServer::start().await;
    let bus = Bus::connect(&nats.url(), prefix).await.expect("bus");
    let relay = ticketflow_nats::relay::Relay {
        store: store.clone(),
        bus: bus.clone(),
        watch: store.watch(),
    };
    let relay = tokio::spawn(relay.run(CancellationToken::new()));
    (db, store, bus, relay, nats)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redelivering_every_message_changes_no_read_model() {
    let (db, store, bus, relay, _nats) = pipeline("redeliver").await;
    write_tickets(&store, "RED", 10, 3).await;
    let first = start_projector(&store, &bus);
    wait_until_projected(&store).await;
    let before = tickets_table(&db).await;
    assert_eq!(before.len(), 10);

    first.abort();
    let _ = first.await;
    // A new consumer starts from the beginning: all 40+ messages come again.
    bus.delete_consumer(CONSUMER)
        .await
        .expect("delete consumer");
    let second = start_projector(&store, &bus);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let consumer = bus.durable_consumer(CONSUMER).await.expect("consumer");
        let mut consumer = consumer;
        let state = consumer.state().await.expect("consumer state");
        if state.pending == 0 && state.ack_pending == 0 && state.delivered > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "redelivery did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(tickets_table(&db).await, before);
    second.abort();
    relay.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn competing_workers_apply_every_ticket_in_order() {
    let (db, store, bus, relay, _nats) = pipeline("compete").await;
    let workers = [start_projector(&store, &bus), start_projector(&store, &bus)];
    let ids = write_tickets(&store, "CMP", 8, 12).await;
    wait_until_projected(&store).await;
    let client = db.client().await;
    for id in ids {
        let row = client
            .query_one("SELECT state->>'title', (state->>'version')::bigint FROM rm_tickets WHERE ticket_id = $1", &[&id])
            .await
            .expect("row");
        assert_eq!(row.get::<_, String>(0), "title 11", "last edit wins");
        assert_eq!(row.get::<_, i64>(1), 13);
    }
    workers.iter().for_each(|w| w.abort());
    relay.abort();
}
