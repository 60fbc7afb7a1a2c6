//! Every event a test stores, checked against its JSON Schema (`schemas/`,
//! regenerated in memory from the domain types; the domain's `schemas` test
//! keeps the files equal to them). The domain's laws check each event they
//! store; a test database, a test server's data directory and a backend's
//! SQLite file check their whole log when dropped, so whatever a suite
//! stored, by whatever path, had the shape its schema promises.

use std::collections::HashMap;
use std::sync::OnceLock;

use jsonschema::Validator;
use serde_json::Value;
use ticketflow_domain::schemas::event_schemas;

/// An event as a log holds it, as far as its schema is concerned.
#[derive(Debug, Clone)]
pub struct StoredShape {
    pub position: i64,
    pub event_type: String,
    pub schema_version: i64,
    /// The `data` column's JSON text.
    pub data: String,
}

fn validators() -> &'static HashMap<(String, i64), Validator> {
    static VALIDATORS: OnceLock<HashMap<(String, i64), Validator>> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        event_schemas()
            .into_iter()
            .map(|s| {
                let validator = jsonschema::validator_for(&s.schema)
                    .unwrap_or_else(|e| panic!("{} is no valid JSON Schema: {e}", s.file_name()));
                ((s.event_type, i64::from(s.schema_version)), validator)
            })
            .collect()
    })
}

/// Why `event` does not match its schema, if it does not.
pub fn mismatch(event: &StoredShape) -> Option<String> {
    let at = format!(
        "event at position {} ({} v{})",
        event.position, event.event_type, event.schema_version
    );
    let key = (event.event_type.clone(), event.schema_version);
    let Some(validator) = validators().get(&key) else {
        return Some(format!("{at}: no schema for this type and version"));
    };
    let data: Value = match serde_json::from_str(&event.data) {
        Ok(data) => data,
        Err(e) => return Some(format!("{at}: data is no JSON: {e}")),
    };
    let errors: Vec<String> = validator
        .iter_errors(&data)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    (!errors.is_empty()).then(|| format!("{at}: {}", errors.join("; ")))
}

/// Panics naming every event of `log` that does not match its schema
/// (unless the thread is already panicking: one failure is enough).
pub fn assert_log_matches(log: &[StoredShape]) {
    let failures: Vec<String> = log.iter().filter_map(mismatch).collect();
    if !failures.is_empty() && !std::thread::panicking() {
        panic!(
            "stored events do not match their schemas (schemas/):\n  {}",
            failures.join("\n  ")
        );
    }
}

/// The log of an embedded `events.db` (none if the file or its table is
/// missing: a test that never opened it).
#[cfg(feature = "store")]
pub fn sqlite_log(path: &std::path::Path) -> Vec<StoredShape> {
    const SQL: &str =
        "SELECT position, event_type, schema_version, data FROM events ORDER BY position";
    let Ok(db) =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return Vec::new();
    };
    let Ok(mut query) = db.prepare(SQL) else {
        return Vec::new();
    };
    let rows = query.query_map([], |row| {
        Ok(StoredShape {
            position: row.get(0)?,
            event_type: row.get(1)?,
            schema_version: row.get(2)?,
            data: row.get(3)?,
        })
    });
    rows.map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

/// The log of a PostgreSQL database (none if it was never migrated).
#[cfg(feature = "store")]
pub async fn pg_log(client: &tokio_postgres::Client) -> Vec<StoredShape> {
    const SQL: &str =
        "SELECT position, event_type, schema_version::bigint, data::text FROM events ORDER BY position";
    let Ok(rows) = client.query(SQL, &[]).await else {
        return Vec::new();
    };
    rows.iter()
        .map(|row| StoredShape {
            position: row.get(0),
            event_type: row.get(1),
            schema_version: row.get(2),
            data: row.get(3),
        })
        .collect()
}
