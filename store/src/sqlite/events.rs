//! Reading event rows: what loading, appending and the trait implementation
//! all need of the `events` table.

use rusqlite::{Connection, OptionalExtension, Params, Row};

use super::from_micros;
use crate::chain::{ChainHead, Hash};
use crate::event_store::{RawJson, StoredEvent};
use crate::stream::EVENT_COLUMNS;
use crate::StoreError;

pub(super) fn stored_event(row: &Row<'_>) -> Result<StoredEvent, StoreError> {
    let metadata = RawJson::from_text(row.get(10)?)?;
    Ok(StoredEvent {
        position: row.get(0)?,
        event_id: row.get(1)?,
        stream_id: row.get(2)?,
        stream_type: row.get(3)?,
        project_id: row.get(4)?,
        version: row.get(5)?,
        seq: row.get(6)?,
        event_type: row.get(7)?,
        schema_version: row.get(8)?,
        data: RawJson::from_text(row.get(9)?)?,
        actor: metadata.actor()?,
        metadata,
        occurred_at: from_micros(row.get(11)?)?,
        hash: hash_column(row, 12)?,
    })
}

/// A nullable BLOB hash column.
fn hash_column(row: &Row<'_>, column: usize) -> Result<Option<Hash>, StoreError> {
    let bytes: Option<Vec<u8>> = row.get(column)?;
    bytes.as_deref().map(Hash::from_slice).transpose()
}

/// The chain's head: the last event's position and hash.
pub(super) fn chain_head(conn: &Connection) -> Result<ChainHead, StoreError> {
    let last = conn
        .prepare_cached("SELECT position, hash FROM events ORDER BY position DESC LIMIT 1")?
        .query_row([], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Option<Vec<u8>>>(1)?))
        })
        .optional()?;
    Ok(match last {
        None => ChainHead {
            position: 0,
            hash: Some(Hash::GENESIS),
        },
        Some((position, hash)) => ChainHead {
            position,
            hash: hash.as_deref().map(Hash::from_slice).transpose()?,
        },
    })
}

/// Events matching `filter` (the rest of a query after `WHERE`).
pub(super) fn query_events<P: Params>(
    conn: &Connection,
    filter: &str,
    params: P,
) -> Result<Vec<StoredEvent>, StoreError> {
    let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE {filter}");
    let mut statement = conn.prepare_cached(&sql)?;
    let events = statement.query_and_then(params, stored_event)?;
    events.collect()
}

/// The position of the newest committed event (0 for an empty log).
pub(super) fn head_position(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT coalesce(max(position), 0) FROM events")?
        .query_row([], |r| r.get(0))?)
}
