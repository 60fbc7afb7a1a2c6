//! Background roles: the outbox relay ([`relay`]) and the projection workers
//! ([`projector`]).
//!
//! Each runs as a single active instance per database, elected with a
//! PostgreSQL session advisory lock held on a dedicated connection: other
//! instances wait as standbys and take over within [`STANDBY_POLL`] when the
//! leader's connection closes (its process died). Order matters to both
//! roles, so one writer at a time is the design, not a limitation.

pub mod leader;
pub mod projector;
pub mod relay;

use std::time::Duration;

/// How often a standby tries to become the leader.
pub const STANDBY_POLL: Duration = Duration::from_secs(1);

use std::sync::Arc;

use ticketflow_bus::Bus;
use ticketflow_projections::{PgReadStore, ReadStore};
use ticketflow_store::pg::{PgStore, Watch};
use ticketflow_store::StoreError;
use tokio::task::JoinHandle;

/// Connections of the workers' own pool: one each, and some for gap fills
/// and leadership checks.
const WORKER_CONNECTIONS: usize = 12;

/// Starts the relay and/or one worker per projection; they run until their
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
        for projection in ticketflow_projections::all() {
            let worker = projector::Projector {
                store: store.clone(),
                reads: reads.clone(),
                bus: bus.clone(),
                broker: bus.broker(),
                projection,
            };
            tasks.push(tokio::spawn(worker.run()));
        }
    }
    Ok(tasks)
}

/// The names of the read models, in the order X-Min-Position checks them.
pub fn read_model_names() -> Vec<&'static str> {
    ticketflow_projections::all()
        .iter()
        .map(|p| p.name())
        .collect()
}
