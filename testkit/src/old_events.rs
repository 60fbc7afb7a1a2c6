//! Events as an older version of the code stored them, put beneath a test
//! server's store with plain SQL: the way to test that old schema versions
//! stay readable (upcast on read) against rows the current code could not
//! write. Each goes at the log's next position, its ticket's next version
//! and its project's next ticket-channel seq, as an append would put it.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use ticketflow::DataDir;
use uuid::Uuid;

use crate::server::{Home, TestServer};

/// One stored event of a ticket, as the old code wrote it.
#[derive(Debug, Clone)]
pub struct OldTicketEvent {
    pub ticket_id: Uuid,
    pub event_type: String,
    pub schema_version: i32,
    /// The `data` column's JSON.
    pub data: Value,
    /// The actor, `{"id", "username"}`.
    pub actor: Value,
    pub occurred_at: DateTime<Utc>,
}

impl OldTicketEvent {
    fn metadata(&self) -> String {
        json!({ "actor": self.actor, "causation_id": null, "correlation_id": null }).to_string()
    }
}

impl TestServer {
    /// Stores `events` beneath the store (see the module docs), then
    /// restarts the server so that no cache hides them and the workers
    /// catch up on them from the log.
    pub async fn restart_with_old_events(self, events: &[OldTicketEvent]) -> Self {
        if let Home::Services(home) = &self.home {
            let mut client = home.db.client().await;
            for event in events {
                insert_pg(&mut client, event).await;
            }
        }
        self.restart_after(|dir| {
            if let Some(dir) = dir {
                let mut db = rusqlite::Connection::open(dir.join(DataDir::EVENTS_DB))
                    .expect("open events.db");
                for event in events {
                    insert_sqlite(&mut db, event);
                }
            }
        })
        .await
    }

    /// The schema versions `stream_id`'s events are stored at, in version order.
    pub async fn stored_schema_versions(&self, stream_id: Uuid) -> Vec<i64> {
        match &self.home {
            Home::Services(home) => home
                .db
                .client()
                .await
                .query(
                    "SELECT schema_version::bigint FROM events WHERE stream_id = $1 ORDER BY version",
                    &[&stream_id],
                )
                .await
                .expect("the stream's events")
                .iter()
                .map(|row| row.get(0))
                .collect(),
            Home::Embedded { dir } => {
                let db = rusqlite::Connection::open(dir.path().join(DataDir::EVENTS_DB))
                    .expect("open events.db");
                let mut query = db
                    .prepare("SELECT schema_version FROM events WHERE stream_id = ?1 ORDER BY version")
                    .expect("prepare");
                query
                    .query_map([stream_id], |row| row.get(0))
                    .expect("the stream's events")
                    .collect::<Result<_, _>>()
                    .expect("schema versions")
            }
        }
    }
}

async fn insert_pg(client: &mut tokio_postgres::Client, e: &OldTicketEvent) {
    let tx = client.transaction().await.expect("begin");
    let position: i64 = tx
        .query_one(
            "UPDATE event_log_head SET position = position + 1 RETURNING position",
            &[],
        )
        .await
        .expect("the log's next position")
        .get(0);
    let stream = tx
        .query_one(
            "UPDATE streams SET version = version + 1, last_position = $2
             WHERE stream_id = $1 RETURNING version, project_id",
            &[&e.ticket_id, &position],
        )
        .await
        .expect("the ticket's next version");
    let (version, project_id): (i64, Uuid) = (stream.get(0), stream.get(1));
    let seq: i64 = tx
        .query_one(
            "UPDATE projects SET last_seq = last_seq + 1 WHERE project_id = $1 RETURNING last_seq",
            &[&project_id],
        )
        .await
        .expect("the project's next seq")
        .get(0);
    tx.execute(
        "INSERT INTO events (position, event_id, stream_id, stream_type, project_id, version,
             seq, event_type, schema_version, data, metadata, occurred_at)
         VALUES ($1, $2, $3, 'ticket', $4, $5, $6, $7, $8, $9::text::jsonb, $10::text::jsonb, $11)",
        &[
            &position,
            &Uuid::now_v7(),
            &e.ticket_id,
            &project_id,
            &version,
            &seq,
            &e.event_type,
            &e.schema_version,
            &e.data.to_string(),
            &e.metadata(),
            &e.occurred_at,
        ],
    )
    .await
    .expect("insert the old event");
    tx.commit().await.expect("commit");
}

fn insert_sqlite(db: &mut rusqlite::Connection, e: &OldTicketEvent) {
    let tx = db.transaction().expect("begin");
    let position: i64 = tx
        .query_row(
            "SELECT coalesce(max(position), 0) + 1 FROM events",
            [],
            |r| r.get(0),
        )
        .expect("the log's next position");
    let (version, project_id): (i64, Uuid) = tx
        .query_row(
            "UPDATE streams SET version = version + 1, last_position = ?2
             WHERE stream_id = ?1 RETURNING version, project_id",
            rusqlite::params![e.ticket_id, position],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the ticket's next version");
    let seq: i64 = tx
        .query_row(
            "UPDATE projects SET last_seq = last_seq + 1 WHERE project_id = ?1 RETURNING last_seq",
            [project_id],
            |r| r.get(0),
        )
        .expect("the project's next seq");
    tx.execute(
        "INSERT INTO events (position, event_id, stream_id, stream_type, project_id, version,
             seq, event_type, schema_version, data, metadata, occurred_at)
         VALUES (?1, ?2, ?3, 'ticket', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        rusqlite::params![
            position,
            Uuid::now_v7(),
            e.ticket_id,
            project_id,
            version,
            seq,
            e.event_type,
            e.schema_version,
            e.data.to_string(),
            e.metadata(),
            e.occurred_at.timestamp_micros(),
        ],
    )
    .expect("insert the old event");
    tx.commit().expect("commit");
}
