//! CSV: a header of the canonical field names, then one row per event, with
//! `data` and `metadata` as canonical JSON text and an absent `seq` empty.

use std::io::Write;

use ticketflow_store::StoredEvent;

use crate::canonical::{record, COLUMNS};
use crate::{ExportError, Sink};

pub struct Rows<W: Write> {
    out: csv::Writer<W>,
}

impl<W: Write> Rows<W> {
    /// Writes the header at once, so an export of no events still names its
    /// columns.
    pub fn new(out: W) -> Result<Self, ExportError> {
        let mut out = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(out);
        out.write_record(COLUMNS)?;
        Ok(Self { out })
    }
}

impl<W: Write> Sink for Rows<W> {
    fn write(&mut self, events: &[StoredEvent]) -> Result<(), ExportError> {
        for event in events {
            self.out.serialize(record(event)?)?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), ExportError> {
        Ok(self.out.flush()?)
    }
}
