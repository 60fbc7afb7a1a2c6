//! Parquet: one typed column per canonical field. Positions, versions and
//! seqs are int64 (seq nullable), `schema_version` int32, ids strings (what
//! pandas and pyarrow users compare and join on), `occurred_at`
//! TIMESTAMP(MICROS, UTC), `data` and `metadata` canonical JSON strings.
//!
//! The writer holds at most one row group in memory before flushing it.

use std::io::Write;
use std::sync::Arc;

use arrow_array::builder::{
    Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use ticketflow_store::StoredEvent;

use crate::canonical::{record, COLUMNS};
use crate::{ExportError, Sink};

/// Rows per row group, and its most bytes: bound the writer's memory (one
/// row group is buffered), and are what readers skip by.
const ROW_GROUP: usize = 16_384;
const ROW_GROUP_BYTES: usize = 64 << 20;

pub struct Columns<W: Write + Send> {
    writer: ArrowWriter<W>,
    schema: SchemaRef,
}

fn schema() -> SchemaRef {
    let utc = Some(Arc::from("UTC"));
    let types = [
        DataType::Utf8,
        DataType::Utf8,
        DataType::Utf8,
        DataType::Utf8,
        DataType::Timestamp(TimeUnit::Microsecond, utc),
        DataType::Int64,
        DataType::Utf8,
        DataType::Int32,
        DataType::Int64,
        DataType::Utf8,
        DataType::Utf8,
        DataType::Utf8,
        DataType::Int64,
    ];
    let fields: Vec<Field> = COLUMNS
        .iter()
        .zip(types)
        .map(|(name, ty)| Field::new(*name, ty, matches!(*name, "seq" | "hash")))
        .collect();
    Arc::new(Schema::new(fields))
}

impl<W: Write + Send> Columns<W> {
    pub fn new(out: W) -> Result<Self, ExportError> {
        let schema = schema();
        let properties = WriterProperties::builder()
            .set_max_row_group_row_count(Some(ROW_GROUP))
            .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
            .set_compression(Compression::SNAPPY)
            .build();
        let writer = ArrowWriter::try_new(out, schema.clone(), Some(properties))?;
        Ok(Self { writer, schema })
    }

    /// One batch of events as Arrow columns, in [`COLUMNS`] order.
    fn batch(&self, events: &[StoredEvent]) -> Result<RecordBatch, ExportError> {
        let n = events.len();
        let text = || StringBuilder::with_capacity(n, n * 36);
        let (mut data, mut event_id, mut metadata) = (text(), text(), text());
        let mut hash = StringBuilder::with_capacity(n, n * 64);
        let mut occurred_at = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
        let mut position = Int64Builder::with_capacity(n);
        let mut project_id = text();
        let mut schema_version = Int32Builder::with_capacity(n);
        let mut seq = Int64Builder::with_capacity(n);
        let (mut stream_id, mut stream_type, mut event_type) = (text(), text(), text());
        let mut version = Int64Builder::with_capacity(n);
        for event in events {
            let r = record(event)?;
            data.append_value(&r.data);
            event_id.append_value(r.event_id.to_string());
            hash.append_option(r.hash.map(|h| h.to_string()));
            metadata.append_value(&r.metadata);
            occurred_at.append_value(event.occurred_at.timestamp_micros());
            position.append_value(r.position);
            project_id.append_value(r.project_id.to_string());
            schema_version.append_value(r.schema_version);
            seq.append_option(r.seq);
            stream_id.append_value(r.stream_id.to_string());
            stream_type.append_value(r.stream_type);
            event_type.append_value(r.event_type);
            version.append_value(r.version);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(data.finish()),
            Arc::new(event_id.finish()),
            Arc::new(hash.finish()),
            Arc::new(metadata.finish()),
            Arc::new(occurred_at.finish()),
            Arc::new(position.finish()),
            Arc::new(project_id.finish()),
            Arc::new(schema_version.finish()),
            Arc::new(seq.finish()),
            Arc::new(stream_id.finish()),
            Arc::new(stream_type.finish()),
            Arc::new(event_type.finish()),
            Arc::new(version.finish()),
        ];
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

impl<W: Write + Send> Sink for Columns<W> {
    fn write(&mut self, events: &[StoredEvent]) -> Result<(), ExportError> {
        let batch = self.batch(events)?;
        Ok(self.writer.write(&batch)?)
    }

    fn finish(self: Box<Self>) -> Result<(), ExportError> {
        let mut out = self.writer.into_inner()?;
        Ok(out.flush()?)
    }
}
