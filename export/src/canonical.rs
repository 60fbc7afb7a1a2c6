//! The canonical form of an event: the JSON object the audit's hash chain
//! hashes, and what an NDJSON export writes per line.
//!
//! Every object's keys are sorted by their UTF-8 bytes, at every depth, with
//! no whitespace, strings escaped as serde_json escapes them and integers as
//! integers. Sorting is done here rather than left to `serde_json::Map`,
//! whose order follows insertion when any crate in the build enables
//! serde_json's `preserve_order`. `data` and `metadata` are the stored JSON
//! (stored schema version, not upcast), re-serialised this way: PostgreSQL's
//! `jsonb` hands them back with its own key order and spacing.

use chrono::SecondsFormat;
use serde::Serialize;
use serde_json::Value;
use ticketflow_store::chain::write_canonical;
use ticketflow_store::{Hash, RawJson, StoredEvent};
use uuid::Uuid;

/// One event's fields, declared in byte order of their names: serialising
/// this with serde_json writes the canonical object, given canonical `data`
/// and `metadata`. `J` is how those two are carried: embedded JSON for
/// NDJSON, JSON text for the tabular formats.
#[derive(Debug, Serialize)]
pub struct Record<'a, J> {
    pub data: J,
    pub event_id: Uuid,
    /// The event's link in the hash chain; null where the log holds none.
    pub hash: Option<Hash>,
    pub metadata: J,
    /// UTC, RFC 3339, exactly six fractional digits, `Z`.
    pub occurred_at: String,
    pub position: i64,
    pub project_id: Uuid,
    pub schema_version: i32,
    pub seq: Option<i64>,
    pub stream_id: Uuid,
    pub stream_type: &'a str,
    #[serde(rename = "type")]
    pub event_type: &'a str,
    pub version: i64,
}

impl<'a, J> Record<'a, J> {
    /// The same record with `data` and `metadata` carried another way.
    pub fn try_map<K, E>(self, mut f: impl FnMut(J) -> Result<K, E>) -> Result<Record<'a, K>, E> {
        Ok(Record {
            data: f(self.data)?,
            event_id: self.event_id,
            hash: self.hash,
            metadata: f(self.metadata)?,
            occurred_at: self.occurred_at,
            position: self.position,
            project_id: self.project_id,
            schema_version: self.schema_version,
            seq: self.seq,
            stream_id: self.stream_id,
            stream_type: self.stream_type,
            event_type: self.event_type,
            version: self.version,
        })
    }
}

/// The record's field names, in the order it writes them (the tabular
/// formats' columns).
pub const COLUMNS: [&str; 13] = [
    "data",
    "event_id",
    "hash",
    "metadata",
    "occurred_at",
    "position",
    "project_id",
    "schema_version",
    "seq",
    "stream_id",
    "stream_type",
    "type",
    "version",
];

/// `event` with its data and metadata as canonical JSON text.
pub fn record(event: &StoredEvent) -> Result<Record<'_, String>, serde_json::Error> {
    Ok(Record {
        data: canonical_text(&event.data)?,
        event_id: event.event_id,
        hash: event.hash,
        metadata: canonical_text(&event.metadata)?,
        occurred_at: event
            .occurred_at
            .to_rfc3339_opts(SecondsFormat::Micros, true),
        position: event.position,
        project_id: event.project_id,
        schema_version: event.schema_version,
        seq: event.seq,
        stream_id: event.stream_id,
        stream_type: &event.stream_type,
        event_type: &event.event_type,
        version: event.version,
    })
}

/// Stored JSON, re-serialised canonically.
fn canonical_text(json: &RawJson) -> Result<String, serde_json::Error> {
    let mut out = Vec::new();
    write_canonical(&mut out, &json.parse::<Value>()?)?;
    // Only serde_json's output went in, which is UTF-8.
    String::from_utf8(out).map_err(|e| serde::ser::Error::custom(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use ticketflow_domain::Actor;

    fn event(data: &str) -> StoredEvent {
        let actor = Actor {
            id: Uuid::from_u128(9),
            username: "ann".into(),
        };
        StoredEvent {
            position: 3,
            event_id: Uuid::from_u128(1),
            stream_id: Uuid::from_u128(2),
            stream_type: "ticket".into(),
            project_id: Uuid::from_u128(4),
            version: 2,
            seq: None,
            event_type: "TicketTitleChanged".into(),
            hash: None,
            schema_version: 1,
            data: RawJson::from_text(data.into()).expect("JSON"),
            actor,
            occurred_at: Utc.timestamp_opt(1_700_000_000, 5_000).single().expect("time"),
            metadata: RawJson::from_text(r#"{"correlation_id": null, "actor": {"username": "ann", "id": "00000000-0000-0000-0000-000000000009"}}"#.into()).expect("JSON"),
        }
    }

    #[test]
    fn nested_keys_are_sorted_by_bytes_without_spaces() {
        let stored =
            r#"{"title": "x\"\u00e9\n", "b": [ {"z": 1, "a": -2.5} ], "B": null, "é": true}"#;
        let event = event(stored);
        let r = record(&event).expect("record");
        assert_eq!(
            r.data,
            r#"{"B":null,"b":[{"a":-2.5,"z":1}],"title":"x\"é\n","é":true}"#
        );
        assert_eq!(
            r.metadata,
            r#"{"actor":{"id":"00000000-0000-0000-0000-000000000009","username":"ann"},"correlation_id":null}"#
        );
        assert_eq!(r.occurred_at, "2023-11-14T22:13:20.000005Z");
    }

    #[test]
    fn the_record_writes_its_keys_in_byte_order() {
        let mut sorted = COLUMNS.to_vec();
        sorted.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        assert_eq!(COLUMNS.to_vec(), sorted);
        let event = event("{}");
        let line = serde_json::to_string(&record(&event).expect("record")).expect("JSON");
        let keys: Vec<usize> = COLUMNS
            .iter()
            .map(|column| line.find(&format!("\"{column}\":")).expect(column))
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{line}");
    }

    #[test]
    fn a_line_without_its_hash_is_what_the_chain_hashes() {
        let event = event(r#"{"title": "t\u00e9", "labels": ["b", "a"]}"#);
        let line = record(&event)
            .expect("record")
            .try_map(serde_json::value::RawValue::from_string)
            .expect("line");
        let mut object = serde_json::to_value(&line).expect("JSON");
        object.as_object_mut().expect("object").remove("hash");
        let mut bytes = Vec::new();
        write_canonical(&mut bytes, &object).expect("canonical");
        let chained = ticketflow_store::chain::canonical_bytes(&event).expect("canonical bytes");
        assert_eq!(String::from_utf8(bytes), String::from_utf8(chained));
    }
}
