//! `ticketflow projections status|rebuild`: operators' view of the read models.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use ticketflow_projections::rebuild::{rebuild, Progress};
use ticketflow_projections::{Projection, ReadStore, SqliteReadStore};
use ticketflow_server::DataDir;
use ticketflow_store::pg::PgStore;
use ticketflow_store::sqlite::SqliteStore;
use ticketflow_store::EventStore;

/// [`status`] of an embedded data directory, which a running server may be
/// using: SQLite lets several processes read the files.
pub async fn status_embedded(dir: &Path) -> anyhow::Result<()> {
    if !dir.join(DataDir::EVENTS_DB).exists() {
        bail!("{} holds no ticketflow data", dir.display());
    }
    let events = SqliteStore::open(&dir.join(DataDir::EVENTS_DB)).context("opening the log")?;
    let reads = SqliteReadStore::open(&dir.join(DataDir::READS_DB))
        .await
        .context("opening the read models")?;
    status(&events, &reads).await
}

/// Each projection's (and the relay's, when there is one) position, lag
/// behind the log, and rate over one second.
pub async fn status(events: &dyn EventStore, reads: &dyn ReadStore) -> anyhow::Result<()> {
    let before = reads.checkpoints().await.context("reading checkpoints")?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = reads.checkpoints().await.context("reading checkpoints")?;
    let head = events
        .head_position()
        .await
        .context("reading the log head")?;
    println!(
        "{:<16} {:>12} {:>10} {:>12}",
        "NAME", "POSITION", "LAG", "RATE"
    );
    println!("{:<16} {:>12}", "log head", head);
    let relayed = after.iter().any(|(name, _)| name == "relay");
    let mut names: Vec<&str> = if relayed { vec!["relay"] } else { Vec::new() };
    names.extend(ticketflow_workers::read_model_names());
    for name in names {
        let at =
            |list: &[(String, i64)]| list.iter().find(|(n, _)| n == name).map_or(0, |(_, p)| *p);
        let (was, is) = (at(&before), at(&after));
        println!(
            "{:<16} {:>12} {:>10} {:>10}/s",
            name,
            is,
            head - is,
            is - was
        );
    }
    Ok(())
}

/// Rebuilds one projection, or all, reporting progress on stderr.
pub async fn rebuild_cmd(store: &PgStore, name: Option<String>, all: bool) -> anyhow::Result<()> {
    let projections = match (name, all) {
        (_, true) => ticketflow_projections::all(),
        (Some(name), false) => match ticketflow_projections::by_name(&name) {
            Some(p) => vec![p],
            None => bail!(
                "no projection named {name} (known: {:?})",
                ticketflow_workers::read_model_names()
            ),
        },
        (None, false) => bail!("name a projection, or pass --all"),
    };
    // Read models are independent (their own tables, checkpoint and rebuild
    // lock), so they are rebuilt at once: while one waits on PostgreSQL,
    // another decodes, and every core has work.
    let redraw = projections.len() == 1 && std::io::stderr().is_terminal();
    let mut rebuilds = tokio::task::JoinSet::new();
    for projection in projections {
        rebuilds.spawn(rebuild_one(store.clone(), projection, redraw));
    }
    while let Some(done) = rebuilds.join_next().await {
        done.context("a rebuild task failed")??;
    }
    Ok(())
}

async fn rebuild_one(
    store: PgStore,
    projection: Arc<dyn Projection>,
    redraw: bool,
) -> anyhow::Result<()> {
    let name = projection.name();
    let report = |p: Progress| print_progress(name, p, redraw);
    let done = rebuild(store.pool(), &store, projection.as_ref(), &report)
        .await
        .with_context(|| format!("rebuilding {name}"))?;
    let newline = if redraw { "\n" } else { "" };
    eprintln!(
        "{newline}{name}: rebuilt at position {} ({} events in {:.1}s)",
        done.position,
        done.applied,
        done.elapsed.as_secs_f64()
    );
    Ok(())
}

fn print_progress(name: &str, p: Progress, redraw: bool) {
    let left = (p.head - p.position).max(0) as f64;
    let eta = if p.rate > 0.0 { left / p.rate } else { 0.0 };
    let line = format!(
        "{name}: {}/{} ({:.0} events/s, ETA {:.0}s)",
        p.position, p.head, p.rate, eta
    );
    let mut err = std::io::stderr();
    // One rebuild on a terminal redraws its line; otherwise one line per
    // report, so concurrent rebuilds do not overwrite each other.
    if redraw {
        let _ = write!(err, "\r{line}   ");
    } else {
        let _ = writeln!(err, "{line}");
    }
}
