//! The background roles of a process: the relay and the projection workers.
//!
//! On PostgreSQL and NATS ([`spawn`]), the outbox relay publishes the log to
//! JetStream and the projection workers consume it through one durable
//! consumer, each role led by one instance (see
//! [`ticketflow_store::pg::leader`]). Embedded ([`spawn_embedded`]), the
//! process is alone: the projection worker follows the log itself, and the
//! local relay echoes events onto the in-process broker.
//!
//! They stop when the process drains ([`ticketflow_app::Drain`]), each after
//! its current batch; their handles then finish.

use std::sync::Arc;

use ticketflow_nats::local_relay::LocalRelay;
use ticketflow_nats::relay::Relay;
use ticketflow_nats::{Broker, Bus};
use ticketflow_projections::worker::stream::StreamProjectors;
use ticketflow_projections::worker::{Announce, Projector};
use ticketflow_projections::{PgReadStore, ReadStore};
use ticketflow_store::pg::PgStore;
use ticketflow_store::{EventStore, StoreError, Watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Connections of the workers' own pool: one each, and some for gap fills
/// and leadership checks.
const WORKER_CONNECTIONS: usize = 12;

/// Starts the relay and/or the projection worker; they run until `stop` is
/// cancelled. Each first waits for the
/// JetStream stream ([`Bus::stream_ready`]): NATS may come up after this
/// process, whose API serves commands meanwhile.
///
/// They write through a pool that commits asynchronously
/// ([`PgStore::for_derived_data`]): waiting for the WAL flush (milliseconds
/// on the reference machine's disk) on every batch would sit on the path of
/// every live message.
pub fn spawn(
    store: &PgStore,
    bus: &Bus,
    watch: &Watch,
    relay: bool,
    projections: bool,
    stop: CancellationToken,
) -> Result<Vec<JoinHandle<()>>, StoreError> {
    let store = &store.for_derived_data(WORKER_CONNECTIONS)?;
    let mut tasks = Vec::new();
    if relay {
        let relay = Relay {
            store: store.clone(),
            bus: bus.clone(),
            watch: watch.clone(),
        };
        let (bus, stop) = (bus.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            if stop.run_until_cancelled(bus.stream_ready()).await.is_some() {
                relay.run(stop).await
            }
        }));
    }
    if projections {
        let reads: Arc<dyn ReadStore> = Arc::new(PgReadStore::new(store.pool().clone()));
        let events: Arc<dyn EventStore> = Arc::new(store.clone());
        let projector = Projector::new(events, reads, bus.broker(), ticketflow_projections::all());
        let workers = StreamProjectors { projector };
        let election = store.pool().clone();
        let bus = bus.clone();
        tasks.push(tokio::spawn(async move {
            if stop.run_until_cancelled(bus.stream_ready()).await.is_some() {
                workers.run(bus, election, stop).await
            }
        }));
    }
    Ok(tasks)
}

/// Starts the embedded mode's workers: the projection worker, following the
/// log, and the relay onto the in-process broker. They run until `stop` is
/// cancelled.
pub fn spawn_embedded(
    events: Arc<dyn EventStore>,
    reads: Arc<dyn ReadStore>,
    announce: Arc<dyn Announce>,
    broker: &Broker,
    watch: &Watch,
    stop: CancellationToken,
) -> Vec<JoinHandle<()>> {
    let relay = LocalRelay {
        events: events.clone(),
        broker: broker.clone(),
        watch: watch.clone(),
    };
    let projector = Projector::new(events, reads, broker.clone(), ticketflow_projections::all());
    let projections = projector.run_on_log(watch.clone(), announce, stop.clone());
    vec![tokio::spawn(relay.run(stop)), tokio::spawn(projections)]
}
