//! Background roles: the relay and the projection workers ([`projector`]).
//!
//! On PostgreSQL and NATS ([`spawn`]), the outbox relay ([`relay`]) publishes
//! the log to JetStream and the projection workers ([`stream`]) consume it
//! through one durable consumer. Each of the two roles runs as
//! a single active instance per database, elected with a PostgreSQL session
//! advisory lock held on a dedicated connection: other instances wait as
//! standbys and take over within [`STANDBY_POLL`] when the leader's
//! connection closes (its process died). Order matters to both roles, so one
//! writer at a time is the design, not a limitation.
//!
//! Embedded ([`spawn_embedded`]), the process is alone: the projection
//! worker follows the log itself, and [`local_relay`] echoes events onto the
//! in-process broker.

mod announce;
pub mod leader;
pub mod local_relay;
pub mod projector;
pub mod relay;
pub mod stream;

use std::sync::Arc;
use std::time::Duration;

use ticketflow_bus::{Broker, Bus};
use ticketflow_projections::{PgReadStore, ReadStore};
use ticketflow_store::pg::PgStore;
use ticketflow_store::{EventStore, StoreError, Watch};
use tokio::task::JoinHandle;

pub use announce::Announce;

/// How often a standby tries to become the leader.
pub const STANDBY_POLL: Duration = Duration::from_secs(1);

/// Connections of the workers' own pool: one each, and some for gap fills
/// and leadership checks.
const WORKER_CONNECTIONS: usize = 12;

/// Starts the relay and/or the projection worker; they run until their
/// handles are aborted (or the runtime ends).
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
) -> Result<Vec<JoinHandle<()>>, StoreError> {
    let store = &store.for_derived_data(WORKER_CONNECTIONS)?;
    let mut tasks = Vec::new();
    if relay {
        let relay = relay::Relay {
            store: store.clone(),
            bus: bus.clone(),
            watch: watch.clone(),
        };
        tasks.push(tokio::spawn(relay.run()));
    }
    if projections {
        let reads: Arc<dyn ReadStore> = Arc::new(PgReadStore::new(store.pool().clone()));
        let events: Arc<dyn EventStore> = Arc::new(store.clone());
        let projector =
            projector::Projector::new(events, reads, bus.broker(), ticketflow_projections::all());
        let workers = stream::StreamProjectors { projector };
        let election = store.pool().clone();
        tasks.push(tokio::spawn(workers.run(bus.clone(), election)));
    }
    Ok(tasks)
}

/// Starts the embedded mode's workers: the projection worker, following the
/// log, and the relay onto the in-process broker. They run until their
/// handles are aborted.
pub fn spawn_embedded(
    events: Arc<dyn EventStore>,
    reads: Arc<dyn ReadStore>,
    announce: Arc<dyn Announce>,
    broker: &Broker,
    watch: &Watch,
) -> Vec<JoinHandle<()>> {
    let relay = local_relay::LocalRelay {
        events: events.clone(),
        broker: broker.clone(),
        watch: watch.clone(),
    };
    let projector =
        projector::Projector::new(events, reads, broker.clone(), ticketflow_projections::all());
    let projections = projector.run_on_log(watch.clone(), announce);
    vec![tokio::spawn(relay.run()), tokio::spawn(projections)]
}

/// The names of the read models, in the order X-Min-Position checks them.
pub fn read_model_names() -> Vec<&'static str> {
    ticketflow_projections::all()
        .iter()
        .map(|p| p.name())
        .collect()
}
