//! `ticketflow projections status|rebuild`: operators' view of the read models.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ticketflow::DataDir;
use ticketflow_projections::rebuild::{rebuild_all, Limits, Progress};
use ticketflow_projections::{apply_batch, Applied, Projection, ReadStore, SqliteReadStore};
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
    names.extend(ticketflow_projections::names());
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

/// Rebuilds one projection, or all, reporting progress on stderr. All are
/// rebuilt together, reading the log once (see [`rebuild_all`]).
pub async fn rebuild_cmd(store: &PgStore, name: Option<String>, all: bool) -> anyhow::Result<()> {
    let projections = chosen(name, all)?;
    let redraw = projections.len() == 1 && std::io::stderr().is_terminal();
    let report = |name: &str, p: Progress| print_progress(name, p, redraw);
    let rebuilt = rebuild_all(
        store.pool(),
        store,
        &projections,
        &report,
        Limits::default(),
    )
    .await
    .context("rebuilding")?;
    let newline = if redraw { "\n" } else { "" };
    for (projection, done) in projections.iter().zip(rebuilt) {
        let phases = &done.phases;
        eprintln!(
            "{newline}{}: rebuilt at position {} ({} events in {:.1}s: replay {:.1}s, \
             states {:.1}s, indexes {:.1}s, swap {:.1}s)",
            projection.name(),
            done.position,
            done.applied,
            done.elapsed.as_secs_f64(),
            phases.replay.as_secs_f64(),
            phases.states.as_secs_f64(),
            phases.indexes.as_secs_f64(),
            phases.swap.as_secs_f64(),
        );
    }
    Ok(())
}

/// The projections a rebuild command names.
fn chosen(name: Option<String>, all: bool) -> anyhow::Result<Vec<Arc<dyn Projection>>> {
    match (name, all) {
        (_, true) => Ok(ticketflow_projections::all()),
        (Some(name), false) => match ticketflow_projections::by_name(&name) {
            Some(p) => Ok(vec![p]),
            None => bail!(
                "no projection named {name} (known: {:?})",
                ticketflow_projections::names()
            ),
        },
        (None, false) => bail!("name a projection, or pass --all"),
    }
}

/// Events a batch of an embedded rebuild replays.
const EMBEDDED_BATCH: i64 = 10_000;

/// Rebuilds read models of an embedded data directory, one after another:
/// each is emptied, then the log is applied to it from the start. The data
/// directory is locked throughout, so the server must be stopped.
pub async fn rebuild_embedded(dir: &Path, name: Option<String>, all: bool) -> anyhow::Result<()> {
    let projections = chosen(name, all)?;
    let dir = DataDir::open(dir)?;
    let events_db = dir.events_db();
    let events = tokio::task::spawn_blocking(move || SqliteStore::open(&events_db))
        .await
        .context("the task opening the log")?
        .context("opening the log")?;
    let reads = SqliteReadStore::open(&dir.reads_db())
        .await
        .context("opening the read models")?;
    let redraw = projections.len() == 1 && std::io::stderr().is_terminal();
    for projection in projections {
        let name = projection.name();
        let started = Instant::now();
        reads
            .reset(projection.as_ref())
            .await
            .with_context(|| format!("emptying {name}"))?;
        let (position, applied) = replay(&events, &reads, projection.as_ref(), started, redraw)
            .await
            .with_context(|| format!("rebuilding {name}"))?;
        let newline = if redraw { "\n" } else { "" };
        eprintln!(
            "{newline}{name}: rebuilt at position {position} ({applied} events in {:.1}s)",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Applies the whole log to an emptied projection; returns where it stands
/// and how many events it applied.
async fn replay(
    events: &SqliteStore,
    reads: &SqliteReadStore,
    projection: &dyn Projection,
    started: Instant,
    redraw: bool,
) -> anyhow::Result<(i64, u64)> {
    let head = events.head_position().await?;
    let (mut position, mut applied) = (0, 0u64);
    loop {
        let batch = events.read_all(position, EMBEDDED_BATCH).await?;
        if batch.is_empty() {
            return Ok((position, applied));
        }
        match apply_batch(reads, projection, &batch).await?.applied {
            Applied::Done {
                position: at,
                applied: n,
            } => {
                position = at;
                applied += n as u64;
            }
            Applied::Gap { expected_from } => {
                bail!("the log skips from {position} to {expected_from}")
            }
        }
        let rate = applied as f64 / started.elapsed().as_secs_f64().max(1e-3);
        let progress = Progress {
            applied,
            position,
            head: head.max(position),
            rate,
        };
        print_progress(projection.name(), progress, redraw);
    }
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
