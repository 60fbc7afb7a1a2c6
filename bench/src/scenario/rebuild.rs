//! Rebuild: every read model rebuilt from a large stored history by the
//! operators' command, `ticketflow projections rebuild --all`.

use std::time::Instant;

use anyhow::Context;
use serde::Serialize;
use ticketflow_store::pg::PgStore;
use ticketflow_testkit::seed::{self, HistorySpec, SeedReport};

use crate::server::Services;

#[derive(Debug, Clone, Serialize)]
pub struct Spec {
    pub events: u64,
}

#[derive(Debug, Serialize)]
pub struct Outcome {
    pub spec: Spec,
    pub seed_seconds: f64,
    pub tickets: u64,
    pub comments: u64,
    pub rebuild_seconds: f64,
    /// Stored events over the wall time of rebuilding every read model.
    pub events_per_s: f64,
    /// What the command reported for each read model.
    pub per_model: Vec<String>,
}

pub async fn run(services: &Services, spec: Spec) -> anyhow::Result<Outcome> {
    let db = services.database("rebuild").await?;
    let result = measure(services, &db, spec).await;
    db.drop().await?;
    result
}

async fn measure(
    services: &Services,
    db: &crate::server::Database,
    spec: Spec,
) -> anyhow::Result<Outcome> {
    services.run_cli(db, &["migrate"]).await?;
    let seeded = seed(db, spec.events).await?;

    let rebuilding = Instant::now();
    let stderr = services
        .run_cli(db, &["projections", "rebuild", "--all"])
        .await?;
    let rebuild_seconds = rebuilding.elapsed().as_secs_f64();
    Ok(Outcome {
        seed_seconds: seeded.elapsed.as_secs_f64(),
        tickets: seeded.tickets,
        comments: seeded.comments,
        rebuild_seconds,
        events_per_s: spec.events as f64 / rebuild_seconds,
        per_model: stderr
            .lines()
            .filter(|l| l.contains("rebuilt at position"))
            .map(str::to_string)
            .collect(),
        spec,
    })
}

/// Stores a realistic history of `events` events (testkit's seeder: many
/// projects, members, every kind of ticket change, comments with mentions).
async fn seed(db: &crate::server::Database, events: u64) -> anyhow::Result<SeedReport> {
    // Setting up needs no durability; the rebuild reads what is committed.
    let url = format!("{}?options=-c%20synchronous_commit%3Doff", db.url);
    let store = PgStore::connect(&url, 8).context("connecting the seeder")?;
    let spec = HistorySpec {
        events,
        ..HistorySpec::default()
    };
    Ok(seed::history(&store, &spec).await?)
}
