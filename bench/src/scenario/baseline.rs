//! The baseline: what this PostgreSQL does with `pgbench -c <clients>`
//! single-row inserts, measured in the same run as the scenarios.

use std::time::Duration;

use anyhow::{bail, Context};
use serde::Serialize;
use tokio::process::Command;

use crate::server::Services;

#[derive(Debug, Serialize)]
pub struct Outcome {
    pub clients: usize,
    pub seconds: u64,
    pub tps: f64,
}

pub async fn run(
    services: &Services,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Outcome> {
    let db = services.database("pgbench").await?;
    let result = pgbench(services, &db.url, clients, duration).await;
    db.drop().await?;
    result
}

async fn pgbench(
    services: &Services,
    url: &str,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<Outcome> {
    crate::server::connect(url)
        .await?
        .batch_execute("CREATE TABLE bench_insert (id bigserial PRIMARY KEY, body text NOT NULL)")
        .await
        .context("creating the pgbench table")?;
    let script = services.log_dir.join("pgbench-insert.sql");
    std::fs::write(
        &script,
        "INSERT INTO bench_insert (body) VALUES ('ticket');\n",
    )
    .context("writing the pgbench script")?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let seconds = duration.as_secs().max(1);
    let out = Command::new("pgbench")
        .args(["-n", "-c", &clients.to_string(), "-j", &threads.to_string()])
        .args(["-T", &seconds.to_string(), "-f"])
        .arg(&script)
        .arg(url)
        .output()
        .await
        .context("running pgbench (Debian package postgresql-client)")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("pgbench failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let tps = stdout
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no tps in pgbench's output: {stdout}"))?;
    Ok(Outcome {
        clients,
        seconds,
        tps,
    })
}
