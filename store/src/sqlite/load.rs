//! Loading aggregates: the latest snapshot plus the events after it, read in
//! one transaction so they belong to one committed state.

use rusqlite::{params, Connection, OptionalExtension};
use serde::de::DeserializeOwned;
use ticketflow_domain::event::Event;
use uuid::Uuid;

use super::events::query_events;
use crate::event_store::{AsOf, Loaded, StoredEvent};
use crate::stream::StreamKind;
use crate::StoreError;

pub(super) fn load<A: StreamKind + DeserializeOwned>(
    conn: &mut Connection,
    stream_id: Uuid,
) -> Result<Loaded<A>, StoreError> {
    let tx = conn.transaction()?;
    let head: Option<(i64, i64)> = tx
        .prepare_cached("SELECT version, last_position FROM streams WHERE stream_id = ?1")?
        .query_row([stream_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((version, last_position)) = head else {
        return Ok(Loaded::default());
    };
    let (mut state, from) = snapshot::<A>(&tx, stream_id)?;
    let events = query_events(
        &tx,
        "stream_id = ?1 AND version > ?2 AND version <= ?3 ORDER BY version",
        params![stream_id, from, version],
    )?;
    apply_events(&mut state, &events)?;
    Ok(Loaded {
        state,
        version: version as u64,
        last_position,
        replayed: events.len(),
    })
}

/// The stored snapshot and its version, or the empty state. A snapshot that
/// no longer decodes (the state's shape changed) is ignored.
fn snapshot<A: StreamKind + DeserializeOwned>(
    conn: &Connection,
    stream_id: Uuid,
) -> Result<(A, i64), StoreError> {
    let row: Option<(i64, String)> = conn
        .prepare_cached("SELECT version, state FROM snapshots WHERE stream_id = ?1")?
        .query_row([stream_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((version, state)) = row else {
        return Ok((A::default(), 0));
    };
    match serde_json::from_str::<A>(&state) {
        Ok(state) => Ok((state, version)),
        Err(e) => {
            tracing::warn!(%stream_id, error = %e, "ignoring undecodable snapshot");
            Ok((A::default(), 0))
        }
    }
}

pub(super) fn load_as_of<A: StreamKind + DeserializeOwned>(
    conn: &mut Connection,
    stream_id: Uuid,
    as_of: AsOf,
) -> Result<Option<Loaded<A>>, StoreError> {
    let events = match as_of {
        AsOf::Version(v) => query_events(
            conn,
            "stream_id = ?1 AND version <= ?2 ORDER BY version",
            params![stream_id, v as i64],
        )?,
        AsOf::Time(t) => query_events(
            conn,
            "stream_id = ?1 AND occurred_at <= ?2 ORDER BY version",
            params![stream_id, super::micros(t)],
        )?,
    };
    let Some(last) = events.last() else {
        return Ok(None);
    };
    let (version, last_position) = (last.version as u64, last.position);
    let mut state = A::default();
    apply_events(&mut state, &events)?;
    Ok(Some(Loaded {
        state,
        version,
        last_position,
        replayed: events.len(),
    }))
}

fn apply_events<A: StreamKind>(state: &mut A, events: &[StoredEvent]) -> Result<(), StoreError> {
    for stored in events {
        let event: Event<A::Payload> = stored.decode()?;
        state.apply(event);
    }
    Ok(())
}
