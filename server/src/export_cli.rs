//! `ticketflow events export`: the log, or a selection of it, as NDJSON, CSV
//! or Parquet, for analysts (see the `ticketflow-export` crate).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use ticketflow::DataDir;
use ticketflow_export::{export, Format};
use ticketflow_store::sqlite::SqliteStore;
use ticketflow_store::{parse_types, Bound, EventFilter, EventStore};
use uuid::Uuid;

#[derive(Args)]
pub struct ExportArgs {
    /// ndjson (canonical JSON objects), csv or parquet.
    #[arg(long, default_value = "ndjson")]
    format: Format,
    /// The file to write; stdout when absent.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Only this project's events.
    #[arg(long)]
    project: Option<Uuid>,
    /// Only these event types, comma-separated (e.g. TicketCreated,TicketStatusChanged).
    // The full path keeps clap from reading a `Vec` as repeated values: the
    // list is one value, parsed (and checked) as a whole.
    #[arg(long, value_parser = parse_types)]
    types: Option<::std::vec::Vec<String>>,
    /// From this position (digits) or RFC 3339 time (`occurred_at`), inclusive.
    #[arg(long)]
    since: Option<Bound>,
    /// Up to this position (digits) or RFC 3339 time (`occurred_at`), inclusive.
    #[arg(long)]
    until: Option<Bound>,
}

/// Exports from an embedded data directory, which a running server may be
/// using: SQLite lets several processes read the files.
pub async fn export_embedded(dir: &Path, args: ExportArgs) -> anyhow::Result<()> {
    let events_db = dir.join(DataDir::EVENTS_DB);
    if !events_db.exists() {
        bail!("{} holds no ticketflow data", dir.display());
    }
    let store = SqliteStore::open(&events_db).context("opening the log")?;
    run(&store, args).await
}

pub async fn run(store: &dyn EventStore, args: ExportArgs) -> anyhow::Result<()> {
    let filter = EventFilter {
        project_id: args.project,
        types: args.types.unwrap_or_default(),
        since: args.since,
        until: args.until,
    };
    let out: Box<dyn Write + Send> = match &args.output {
        Some(path) => {
            Box::new(File::create(path).with_context(|| format!("creating {}", path.display()))?)
        }
        None => Box::new(std::io::stdout()),
    };
    let done = export(store, &filter, args.format, out)
        .await
        .context("exporting the log")?;
    eprintln!(
        "exported {} events (the log's head was {})",
        done.events, done.head
    );
    Ok(())
}
