//! `ticketflow audit verify`: recomputes the log's hash chain (see
//! `docs/audit.md`) and names the first position where it breaks.

use std::path::Path;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use ticketflow::DataDir;
use ticketflow_store::chain::{verify, Failure};
use ticketflow_store::sqlite::SqliteStore;
use ticketflow_store::EventStore;

/// Verifies the log of an embedded data directory, which a running server
/// may be using (SQLite lets several processes read the file).
pub async fn verify_embedded(dir: &Path, from: i64) -> anyhow::Result<()> {
    let events_db = dir.join(DataDir::EVENTS_DB);
    if !events_db.exists() {
        bail!("{} holds no ticketflow data", dir.display());
    }
    let store = tokio::task::spawn_blocking(move || SqliteStore::open(&events_db))
        .await
        .context("the task opening the log")?
        .context("opening the log")?;
    verify_log(&store, from).await
}

/// Verifies from `from` to the head, with a progress bar on stderr (drawn
/// only on a terminal); prints a one-line summary when the chain is intact,
/// else fails naming the first broken position.
pub async fn verify_log(store: &dyn EventStore, from: i64) -> anyhow::Result<()> {
    let head = store
        .head_position()
        .await
        .context("reading the log head")?;
    if from > head.max(1) {
        bail!("--from {from} is past the log's head ({head})");
    }
    let bar = ProgressBar::new(u64::try_from(head - from + 1).unwrap_or(0));
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} events ({per_sec}, ETA {eta}) {msg}")
            .context("the progress bar's template")?,
    );
    let start = from.max(1);
    let outcome = verify(store, start, |position| {
        bar.set_position(u64::try_from(position - start + 1).unwrap_or(0));
    })
    .await;
    bar.finish_and_clear();
    match outcome {
        Ok((verified, _)) => {
            println!(
                "verified {} events, head {} hash {}",
                verified.events, verified.position, verified.hash
            );
            Ok(())
        }
        Err(Failure::Broken(broken)) => {
            tracing::error!(
                position = broken.position(),
                "the log's hash chain is broken"
            );
            bail!("the chain breaks at {broken}")
        }
        Err(Failure::Store(e)) => Err(e).context("reading the log"),
    }
}
