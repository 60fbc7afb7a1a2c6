//! Writes ticketflow's event log out for analysts: NDJSON, CSV or Parquet,
//! optionally narrowed to a project, some event types, or a range of
//! positions or times (an [`EventFilter`]).
//!
//! The log is read through the [`EventStore`] in position-ordered batches
//! and each batch is written before the next is read, so memory stays
//! constant however long the log: Parquet buffers at most one row group.
//! The export is a snapshot: it stops at the head the log had when it began.
//!
//! Every format carries the events in their canonical form
//! ([`canonical::Record`]): the stored schema version and stored `data`
//! (not upcast), which is what the audit's hash chain is computed over.

pub mod canonical;
mod csv_rows;
mod ndjson;
mod parquet_file;
mod progress;

use std::io::Write;
use std::str::FromStr;

use ticketflow_store::{EventFilter, EventStore, StoreError, StoredEvent};

/// Events read per query.
const BATCH: i64 = 1_000;

/// The file formats an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One canonical JSON object per line.
    Ndjson,
    /// A header, then one row per event; `data` and `metadata` as JSON text.
    Csv,
    /// Typed columns, row groups of bounded size.
    Parquet,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "ndjson" => Ok(Self::Ndjson),
            "csv" => Ok(Self::Csv),
            "parquet" => Ok(Self::Parquet),
            _ => Err(format!("unknown format {name:?} (ndjson, csv or parquet)")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("reading the log: {0}")]
    Store(#[from] StoreError),
    #[error("writing the export: {0}")]
    Io(#[from] std::io::Error),
    #[error("serialising an event: {0}")]
    Json(#[from] serde_json::Error),
    #[error("writing CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("writing Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("building Parquet columns: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exported {
    pub events: u64,
    /// The log's head when the export began: nothing after it was read.
    pub head: i64,
}

/// Where a format writes a batch of events.
trait Sink {
    fn write(&mut self, events: &[StoredEvent]) -> Result<(), ExportError>;
    /// Completes the file (a Parquet footer) and flushes it.
    fn finish(self: Box<Self>) -> Result<(), ExportError>;
}

/// Writes the events matching `filter`, up to the log's current head, to
/// `out` in `format`, with a progress bar on stderr when it is a terminal.
pub async fn export<W: Write + Send + 'static>(
    store: &dyn EventStore,
    filter: &EventFilter,
    format: Format,
    out: W,
) -> Result<Exported, ExportError> {
    let head = store.head_position().await?;
    let mut sink: Box<dyn Sink> = match format {
        Format::Ndjson => Box::new(ndjson::Lines::new(out)),
        Format::Csv => Box::new(csv_rows::Rows::new(out)?),
        Format::Parquet => Box::new(parquet_file::Columns::new(out)?),
    };
    let bar = progress::Bar::new(filter, head);
    let (mut after, mut events) = (0, 0u64);
    loop {
        let mut batch = store.filtered_events(filter, after, BATCH).await?;
        // Events committed since the export began are left for the next one.
        batch.retain(|e| e.position <= head);
        let Some(last) = batch.last() else { break };
        after = last.position;
        sink.write(&batch)?;
        events += batch.len() as u64;
        bar.advance(after, events);
    }
    sink.finish()?;
    bar.finish(events);
    tracing::info!(events, head, ?format, "export written");
    Ok(Exported { events, head })
}
