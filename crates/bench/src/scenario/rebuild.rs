//! Rebuild: every read model rebuilt from a large stored history by the
//! operators' command, `ticketflow projections rebuild --all`.

use std::time::Instant;

use anyhow::Context;
use serde::Serialize;
use ticketflow_store::pg::PgStore;

use crate::server::Services;

#[derive(Debug, Clone, Serialize)]
pub struct Spec {
    pub events: u64,
}

#[derive(Debug, Serialize)]
pub struct Outcome {
    pub spec: Spec,
    pub seed_seconds: f64,
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
    let seeding = Instant::now();
    let store = PgStore::connect(&db.url, 8).context("connecting the seeder")?;
    seed(&store, spec.events).await?;
    let seed_seconds = seeding.elapsed().as_secs_f64();
    drop(store);

    let rebuilding = Instant::now();
    let stderr = services
        .run_cli(db, &["projections", "rebuild", "--all"])
        .await?;
    let rebuild_seconds = rebuilding.elapsed().as_secs_f64();
    Ok(Outcome {
        seed_seconds,
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

/// Stores `events` events: tickets of 100 events each, over 10 projects.
async fn seed(store: &PgStore, events: u64) -> anyhow::Result<()> {
    use ticketflow_store::Loaded;
    use ticketflow_testkit::fixtures;
    let projects: Vec<uuid::Uuid> = {
        let mut ids = Vec::new();
        for p in 0..10 {
            let id = uuid::Uuid::now_v7();
            fixtures::append_project(store, id, &format!("S{p}")).await?;
            ids.push(id);
        }
        ids
    };
    let tickets = events.div_ceil(100);
    for t in 0..tickets {
        let project = projects[(t % 10) as usize];
        let ticket = uuid::Uuid::now_v7();
        let mut batch = vec![fixtures::created(project, ticket)];
        batch.extend((1..100).map(fixtures::retitled));
        fixtures::append_ticket(store, project, ticket, Loaded::default(), batch).await?;
    }
    Ok(())
}
