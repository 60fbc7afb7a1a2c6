//! The relay against a real nats-server of the test's own (so the test can
//! kill it) and a real PostgreSQL: the stream ends up holding every event
//! exactly once, in position order, whatever fails in between.

use std::time::Duration;

use ticketflow_nats::relay::Relay;
use ticketflow_nats::{Bus, Tail};
use ticketflow_store::pg::PgStore;
use ticketflow_store::{EventStore, Loaded};
use ticketflow_testkit::fixtures::{append_ticket, create_project, created, retitled};
use ticketflow_testkit::{NatsServer, TestDb};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

fn prefix() -> String {
    format!("tf_{}", Uuid::new_v4().simple())
}

/// Appends `tickets` tickets of two events each to a fresh project.
async fn write_events(store: &PgStore, key: &str, tickets: usize) {
    let project_id = create_project(store, key).await;
    for _ in 0..tickets {
        let id = Uuid::now_v7();
        let events = vec![created(project_id, id), retitled(1)];
        append_ticket(store, project_id, id, Loaded::default(), events)
            .await
            .expect("append");
    }
}

fn start_relay(store: &PgStore, bus: &Bus) -> tokio::task::JoinHandle<()> {
    start_relay_until(store, bus, CancellationToken::new())
}

fn start_relay_until(
    store: &PgStore,
    bus: &Bus,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let relay = Relay {
        store: store.clone(),
        bus: bus.clone(),
        watch: store.watch(),
    };
    tokio::spawn(relay.run(stop))
}

/// The positions in the stream, in stream order.
async fn stream_positions(bus: &Bus) -> Vec<i64> {
    let mut stream = bus.ensure_stream().await.expect("stream");
    let last = stream.info().await.expect("info").state.last_sequence;
    let mut positions = Vec::new();
    for seq in 1..=last {
        let message = stream.get_raw_message(seq).await.expect("message");
        positions.push(
            ticketflow_nats::decode(&message.payload)
                .expect("decode")
                .position,
        );
    }
    positions
}

/// Waits (bounded) until the stream's last message is at the log's head.
async fn wait_until_relayed(bus: &Bus, store: &PgStore) {
    let head = store.head_position().await.expect("head");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match bus.last_published_position().await {
            Ok(p) if p == head => return,
            _ => assert!(
                tokio::time::Instant::now() < deadline,
                "relay did not catch up"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (bounded) until the relay has recorded the log's head as relayed
/// (operators read it in `projections status`).
async fn wait_until_recorded(store: &PgStore) {
    let head = store.head_position().await.expect("head");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let recorded = recorded(store).await;
        if recorded == Some(head) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay recorded {recorded:?}, not the head {head}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The position the relay recorded as relayed, if any.
async fn recorded(store: &PgStore) -> Option<i64> {
    let client = store.pool().get().await.expect("client");
    let row = client
        .query_opt(
            "SELECT position FROM projection_checkpoints WHERE name = 'relay'",
            &[],
        )
        .await
        .expect("relay checkpoint");
    row.map(|r| r.get(0))
}

async fn assert_exactly_once_in_order(bus: &Bus, store: &PgStore) {
    let positions = stream_positions(bus).await;
    let head = store.head_position().await.expect("head");
    assert_eq!(positions, (1..=head).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relay_catches_up_after_a_nats_outage() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let mut nats = NatsServer::start().await;
    let bus = Bus::connect(&nats.url(), &prefix()).await.expect("bus");
    let relay = start_relay(&store, &bus);

    write_events(&store, "ONE", 20).await;
    wait_until_relayed(&bus, &store).await;

    nats.kill();
    // Commands keep succeeding while NATS is down.
    write_events(&store, "TWO", 30).await;
    nats.resume().await;

    wait_until_relayed(&bus, &store).await;
    assert_exactly_once_in_order(&bus, &store).await;
    wait_until_recorded(&store).await;
    relay.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_killed_mid_batch_is_replaced_without_loss_or_duplicates() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let nats = NatsServer::start().await;
    let bus = Bus::connect(&nats.url(), &prefix()).await.expect("bus");
    write_events(&store, "BIG", 600).await;

    let first = start_relay(&store, &bus);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while bus.last_published_position().await.unwrap_or(0) < 50 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "relay did not start publishing"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.abort();
    let _ = first.await;
    let head = store.head_position().await.expect("head");
    let partial = bus.last_published_position().await.expect("position");
    assert!(
        partial < head,
        "the relay finished before it could be killed"
    );

    let second = start_relay(&store, &bus);
    wait_until_relayed(&bus, &store).await;
    assert_exactly_once_in_order(&bus, &store).await;
    second.abort();
}

/// Stopped (the process drains), the relay ends after its batch: what it
/// published is a whole prefix of the log, recorded as relayed, and its
/// leadership goes to the next relay, which goes on from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_relay_finishes_its_batch_records_it_and_hands_over() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let nats = NatsServer::start().await;
    let bus = Bus::connect(&nats.url(), &prefix()).await.expect("bus");
    write_events(&store, "STOP", 600).await;

    let stop = CancellationToken::new();
    let first = start_relay_until(&store, &bus, stop.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while bus.last_published_position().await.unwrap_or(0) < 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "relay did not start publishing"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), first)
        .await
        .expect("the relay stops within its batch")
        .expect("the relay's task");
    let stopped_at = bus.last_published_position().await.expect("position");
    assert_eq!(
        stream_positions(&bus).await,
        (1..=stopped_at).collect::<Vec<_>>()
    );
    assert_eq!(recorded(&store).await, Some(stopped_at));

    let next = start_relay(&store, &bus);
    wait_until_relayed(&bus, &store).await;
    assert_exactly_once_in_order(&bus, &store).await;
    next.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_standby_relay_takes_over_when_the_leader_dies() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let nats = NatsServer::start().await;
    let bus = Bus::connect(&nats.url(), &prefix()).await.expect("bus");
    let leader = start_relay(&store, &bus);
    let standby = start_relay(&store, &bus);
    write_events(&store, "HA", 50).await;
    wait_until_relayed(&bus, &store).await;

    leader.abort();
    let _ = leader.await;
    write_events(&store, "HB", 50).await;
    wait_until_relayed(&bus, &store).await;
    assert_exactly_once_in_order(&bus, &store).await;
    standby.abort();
}

/// A batch is published with every message in flight at once, each expecting
/// the one before it at the stream's end: after a tail with a message missing,
/// none of it is stored; after a stale tail (another relay published some of
/// it meanwhile), the duplicates are dropped and the rest continues the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_continues_only_its_own_tail() {
    let db = TestDb::create().await;
    let store = db.store().await;
    let nats = NatsServer::start().await;
    let bus = Bus::connect(&nats.url(), &prefix()).await.expect("bus");
    write_events(&store, "TAIL", 20).await;
    let events = store.read_all(0, 100).await.expect("events");

    let empty = bus.tail().await.expect("empty tail");
    let tail = bus
        .publish_after(empty, &events[..10])
        .await
        .expect("first ten");
    assert_eq!(tail, bus.tail().await.expect("tail"));
    assert_eq!(tail.position, events[9].position);

    let missing_one = Tail {
        sequence: tail.sequence + 1,
        position: events[10].position,
    };
    let refused = bus.publish_after(missing_one, &events[11..]).await;
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(stream_positions(&bus).await, (1..=10).collect::<Vec<_>>());

    let stale = Tail {
        sequence: 5,
        position: events[4].position,
    };
    // Whether the duplicates are acknowledged or refused, none is stored twice.
    let _ = bus.publish_after(stale, &events[5..]).await;
    assert_exactly_once_in_order(&bus, &store).await;
}
