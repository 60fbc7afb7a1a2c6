//! NDJSON: each event's canonical object on a line of its own.

use std::io::{BufWriter, Write};

use serde_json::value::RawValue;
use ticketflow_store::StoredEvent;

use crate::canonical::record;
use crate::{ExportError, Sink};

pub struct Lines<W: Write> {
    out: BufWriter<W>,
}

impl<W: Write> Lines<W> {
    pub fn new(out: W) -> Self {
        Self {
            out: BufWriter::new(out),
        }
    }
}

impl<W: Write> Sink for Lines<W> {
    fn write(&mut self, events: &[StoredEvent]) -> Result<(), ExportError> {
        for event in events {
            // The canonical text embedded as JSON, not as a string.
            let line = record(event)?.try_map(RawValue::from_string)?;
            serde_json::to_writer(&mut self.out, &line)?;
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), ExportError> {
        Ok(self.out.flush()?)
    }
}
