//! Loading aggregates: the latest snapshot plus the events after it.

use serde::de::DeserializeOwned;
use ticketflow_domain::event::Event;
use tokio_postgres::Row;
use uuid::Uuid;

use super::event_store::stored_event;
use super::{prepared, PgStore};
use crate::event_store::{AsOf, Loaded};
use crate::stream::StreamKind;
use crate::stream::EVENT_COLUMNS;
use crate::StoreError;

impl PgStore {
    pub(super) async fn load<A: StreamKind + DeserializeOwned>(
        &self,
        stream_id: Uuid,
    ) -> Result<Loaded<A>, StoreError> {
        let client = self.client().await?;
        // The stream row is read first and bounds the events read after it, so
        // the version and position reported belong to the state built.
        let Some(head) = prepared::query_opt(
            &client,
            "SELECT version, last_position FROM streams WHERE stream_id = $1",
            &[&stream_id],
        )
        .await?
        else {
            return Ok(Loaded::default());
        };
        let (version, last_position): (i64, i64) = (head.get(0), head.get(1));
        let (mut state, from) = self.snapshot::<A>(&client, stream_id).await?;
        let rows = prepared::query(
            &client,
            &format!(
                "SELECT {EVENT_COLUMNS} FROM events
                     WHERE stream_id = $1 AND version > $2 AND version <= $3 ORDER BY version"
            ),
            &[&stream_id, &from, &version],
        )
        .await?;
        let replayed = rows.len();
        apply_rows(&mut state, &rows)?;
        Ok(Loaded {
            state,
            version: version as u64,
            last_position,
            replayed,
        })
    }

    /// The stored snapshot and its version, or the empty state. A snapshot
    /// that no longer decodes (the state's shape changed) is ignored.
    async fn snapshot<A: StreamKind + DeserializeOwned>(
        &self,
        client: &deadpool_postgres::ClientWrapper,
        stream_id: Uuid,
    ) -> Result<(A, i64), StoreError> {
        let row = prepared::query_opt(
            client,
            "SELECT version, state FROM snapshots WHERE stream_id = $1",
            &[&stream_id],
        )
        .await?;
        let Some(row) = row else {
            return Ok((A::default(), 0));
        };
        match serde_json::from_value::<A>(row.get(1)) {
            Ok(state) => Ok((state, row.get(0))),
            Err(e) => {
                tracing::warn!(%stream_id, error = %e, "ignoring undecodable snapshot");
                Ok((A::default(), 0))
            }
        }
    }

    pub(super) async fn load_as_of<A: StreamKind + DeserializeOwned>(
        &self,
        stream_id: Uuid,
        as_of: AsOf,
    ) -> Result<Option<Loaded<A>>, StoreError> {
        let client = self.client().await?;
        let rows = match as_of {
            AsOf::Version(v) => {
                prepared::query(
                    &client,
                    &format!(
                        "SELECT {EVENT_COLUMNS} FROM events
                                  WHERE stream_id = $1 AND version <= $2 ORDER BY version"
                    ),
                    &[&stream_id, &(v as i64)],
                )
                .await?
            }
            AsOf::Time(t) => {
                prepared::query(
                    &client,
                    &format!(
                        "SELECT {EVENT_COLUMNS} FROM events
                                  WHERE stream_id = $1 AND occurred_at <= $2 ORDER BY version"
                    ),
                    &[&stream_id, &t],
                )
                .await?
            }
        };
        let Some(last) = rows.last() else {
            return Ok(None);
        };
        let last = stored_event(last)?;
        let mut state = A::default();
        apply_rows(&mut state, &rows)?;
        Ok(Some(Loaded {
            state,
            version: last.version as u64,
            last_position: last.position,
            replayed: rows.len(),
        }))
    }
}

fn apply_rows<A: StreamKind>(state: &mut A, rows: &[Row]) -> Result<(), StoreError> {
    for row in rows {
        let event: Event<A::Payload> = stored_event(row)?.decode()?;
        state.apply(event);
    }
    Ok(())
}
