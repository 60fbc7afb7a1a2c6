//! Rebuild: every read model rebuilt from a large stored history by the
//! operators' command, `ticketflow projections rebuild --all`.
//!
//! With a kept database (`--rebuild-database`), the history is seeded once
//! and replayed by every later run: A/B runs of two server binaries then
//! rebuild the very same log, and skip the minutes of seeding.

use std::time::Instant;

use anyhow::{ensure, Context};
use serde::Serialize;
use ticketflow_store::pg::PgStore;
use ticketflow_testkit::seed::{self, HistorySpec};

use crate::server::{connect, Database, Services};

#[derive(Debug, Clone, Serialize)]
pub struct Spec {
    pub events: u64,
    /// A database to seed once and keep, instead of a fresh one per run.
    pub kept_database: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Outcome {
    pub spec: Spec,
    /// 0 when a kept database's history was reused.
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
    if let Some(name) = &spec.kept_database {
        let db = services.kept_database(name).await?;
        return measure(services, &db, spec).await;
    }
    let db = services.database("rebuild").await?;
    let result = measure(services, &db, spec).await;
    db.drop().await?;
    result
}

async fn measure(services: &Services, db: &Database, spec: Spec) -> anyhow::Result<Outcome> {
    services.run_cli(db, &["migrate"]).await?;
    let seeded = seed(db, spec.events).await?;

    let rebuilding = Instant::now();
    let stderr = services
        .run_cli(db, &["projections", "rebuild", "--all"])
        .await?;
    let rebuild_seconds = rebuilding.elapsed().as_secs_f64();
    Ok(Outcome {
        seed_seconds: seeded.seconds,
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

/// What the log holds, and how long storing it took this run.
struct Seeded {
    seconds: f64,
    tickets: u64,
    comments: u64,
}

/// Stores a realistic history of `events` events (testkit's seeder: many
/// projects, members, every kind of ticket change, comments with mentions),
/// unless the database holds it already (a kept one, seeded before).
async fn seed(db: &Database, events: u64) -> anyhow::Result<Seeded> {
    let client = connect(&db.url).await?;
    let row = client
        .query_one(
            "SELECT count(*),
                    count(*) FILTER (WHERE event_type = 'TicketCreated'),
                    count(*) FILTER (WHERE event_type = 'CommentAdded')
             FROM events",
            &[],
        )
        .await
        .context("counting the stored events")?;
    let (stored, tickets, comments): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    if stored > 0 {
        ensure!(
            stored as u64 == events,
            "{} holds {stored} events, not {events}: drop it or name another",
            db.name
        );
        return Ok(Seeded {
            seconds: 0.0,
            tickets: tickets as u64,
            comments: comments as u64,
        });
    }
    // Setting up needs no durability; the rebuild reads what is committed.
    let url = format!("{}?options=-c%20synchronous_commit%3Doff", db.url);
    let store = PgStore::connect(&url, 8).context("connecting the seeder")?;
    let spec = HistorySpec {
        events,
        ..HistorySpec::default()
    };
    let report = seed::history(&store, &spec).await?;
    Ok(Seeded {
        seconds: report.elapsed.as_secs_f64(),
        tickets: report.tickets,
        comments: report.comments,
    })
}
