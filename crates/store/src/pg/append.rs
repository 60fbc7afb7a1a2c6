//! Appending events: one transaction per command.
//!
//! Lock order, the same for every append so two never deadlock:
//! 1. the stream's row (compare-and-set on its version);
//! 2. the project's row (ticket numbers, channel seq, membership index);
//! 3. the global head row (positions), taken last and held only for the
//!    insert and the commit.
//!
//! Because every append holds the head row from taking its positions until it
//! commits, appends commit in position order: a reader that sees position p
//! has already been able to see every position below p.

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde::Serialize;
use ticketflow_domain::event::{Event, Payload};
use ticketflow_domain::project::{Project, ProjectEvent, ProjectPayload};
use ticketflow_domain::ticket::{Ticket, TicketEvent, TicketPayload};
use tokio_postgres::Transaction;
use uuid::Uuid;

use super::{taken, PgStore};
use crate::event_store::{Append, Committed, StoredEvent, SNAPSHOT_EVERY};
use crate::StoreError;

/// What differs between the two kinds of stream when appending.
pub(super) trait StreamKind:
    Aggregate<Event = Event<Self::Payload>> + Clone + Serialize
{
    type Payload: Payload;
    const STREAM_TYPE: &'static str;

    /// Updates the project's row for these events and returns each event's
    /// channel seq; may complete the events (ticket numbers).
    async fn index(
        tx: &Transaction<'_>,
        project_id: Uuid,
        events: &mut [Self::Event],
    ) -> Result<Vec<Option<i64>>, StoreError>;
}

impl StreamKind for Ticket {
    type Payload = TicketPayload;
    const STREAM_TYPE: &'static str = "ticket";

    /// Takes one seq per event and one number per created ticket from the
    /// project's counters; the row lock makes both gap-free and unique.
    async fn index(
        tx: &Transaction<'_>,
        project_id: Uuid,
        events: &mut [TicketEvent],
    ) -> Result<Vec<Option<i64>>, StoreError> {
        let count = events.len() as i64;
        let created = events
            .iter()
            .filter(|e| matches!(e.payload, TicketPayload::TicketCreated { .. }))
            .count() as i64;
        let row = tx
            .query_opt(
                "UPDATE projects SET last_seq = last_seq + $2,
                    last_ticket_number = last_ticket_number + $3
                 WHERE project_id = $1 RETURNING key, last_seq, last_ticket_number",
                &[&project_id, &count, &created],
            )
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("project {project_id} has no index row")))?;
        let key: String = row.get(0);
        let first_seq = row.get::<_, i64>(1) - count + 1;
        let mut number = row.get::<_, i64>(2) - created;
        for event in events.iter_mut() {
            if matches!(event.payload, TicketPayload::TicketCreated { .. }) {
                number += 1;
                event.payload.assign_number(&key, number as u64);
            }
        }
        Ok((0..count).map(|i| Some(first_seq + i)).collect())
    }
}

impl StreamKind for Project {
    type Payload = ProjectPayload;
    const STREAM_TYPE: &'static str = "project";

    /// Keeps the project index and member list in step with the events.
    async fn index(
        tx: &Transaction<'_>,
        project_id: Uuid,
        events: &mut [ProjectEvent],
    ) -> Result<Vec<Option<i64>>, StoreError> {
        for event in events.iter() {
            match &event.payload {
                ProjectPayload::ProjectCreated {
                    key,
                    name,
                    statuses,
                    ..
                } => {
                    tx.execute(
                        "INSERT INTO projects (project_id, key, name, statuses, created_at)
                         VALUES ($1, $2, $3, $4, $5)",
                        &[
                            &project_id,
                            key,
                            name,
                            &serde_json::to_value(statuses)?,
                            &event.meta.occurred_at,
                        ],
                    )
                    .await
                    .map_err(|e| taken(e, "projects_key_key", "project_key"))?;
                }
                ProjectPayload::MemberAdded { member } => {
                    tx.execute(
                        "INSERT INTO project_members
                           (project_id, user_id, username, display_name, role, joined_at)
                         VALUES ($1, $2, $3, $4, $5, $6)",
                        &[
                            &project_id,
                            &member.user_id,
                            &member.username,
                            &member.display_name,
                            &role_name(member.role),
                            &member.joined_at,
                        ],
                    )
                    .await?;
                }
                ProjectPayload::MemberRemoved { user_id, .. } => {
                    tx.execute(
                        "DELETE FROM project_members WHERE project_id = $1 AND user_id = $2",
                        &[&project_id, user_id],
                    )
                    .await?;
                }
            }
        }
        Ok(vec![None; events.len()])
    }
}

pub(super) fn role_name(role: ticketflow_domain::Role) -> &'static str {
    match role {
        ticketflow_domain::Role::Admin => "admin",
        ticketflow_domain::Role::Member => "member",
    }
}

impl PgStore {
    pub(super) async fn append<A: StreamKind>(
        &self,
        append: Append<A, A::Event>,
    ) -> Result<Committed<A>, StoreError> {
        let Append {
            stream_id,
            project_id,
            before,
            mut events,
            metadata,
        } = append;
        let expected = before.version as i64;
        let new_version = expected + events.len() as i64;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;

        compare_and_set_version::<A>(&tx, stream_id, project_id, expected, new_version).await?;
        let seqs = A::index(&tx, project_id, &mut events).await?;

        let mut state = before.state;
        for event in &events {
            state.apply(event.clone());
        }
        if new_version as u64 / SNAPSHOT_EVERY > expected as u64 / SNAPSHOT_EVERY {
            tx.execute(
                "INSERT INTO snapshots (stream_id, version, state) VALUES ($1, $2, $3)
                 ON CONFLICT (stream_id) DO UPDATE SET version = $2, state = $3",
                &[&stream_id, &new_version, &serde_json::to_value(&state)?],
            )
            .await?;
        }

        let rows = Rows::new::<A>(stream_id, project_id, expected, &events, &seqs, &metadata)?;
        let stored = rows.insert(&tx).await?;
        let last = stored.last().map_or(0, |e| e.position);
        tx.execute(
            "UPDATE streams SET last_position = $2 WHERE stream_id = $1",
            &[&stream_id, &last],
        )
        .await?;
        // Delivered at commit, so a watcher never hears of an uncommitted event.
        let channel = super::watch::EVENTS_CHANNEL;
        tx.execute("SELECT pg_notify($1, $2)", &[&channel, &last.to_string()])
            .await?;
        tx.commit().await?;
        Ok(Committed {
            state,
            events: stored,
        })
    }
}

/// Moves the stream from `expected` to `new_version`, or reports where it is.
async fn compare_and_set_version<A: StreamKind>(
    tx: &Transaction<'_>,
    stream_id: Uuid,
    project_id: Uuid,
    expected: i64,
    new_version: i64,
) -> Result<(), StoreError> {
    let changed = if expected == 0 {
        tx.execute(
            "INSERT INTO streams (stream_id, stream_type, project_id, version, last_position)
             VALUES ($1, $2, $3, $4, 0) ON CONFLICT (stream_id) DO NOTHING",
            &[&stream_id, &A::STREAM_TYPE, &project_id, &new_version],
        )
        .await?
    } else {
        tx.execute(
            "UPDATE streams SET version = $3 WHERE stream_id = $1 AND version = $2",
            &[&stream_id, &expected, &new_version],
        )
        .await?
    };
    if changed == 1 {
        return Ok(());
    }
    let current: i64 = tx
        .query_opt(
            "SELECT version FROM streams WHERE stream_id = $1",
            &[&stream_id],
        )
        .await?
        .map_or(0, |r| r.get(0));
    Err(StoreError::VersionConflict {
        current: current as u64,
    })
}

/// The columns of the events being appended, ready for one `UNNEST` insert.
struct Rows {
    stream_id: Uuid,
    stream_type: &'static str,
    project_id: Uuid,
    event_ids: Vec<Uuid>,
    versions: Vec<i64>,
    seqs: Vec<Option<i64>>,
    types: Vec<String>,
    schema_versions: Vec<i32>,
    data: Vec<serde_json::Value>,
    metadata: Vec<serde_json::Value>,
    occurred_at: Vec<DateTime<Utc>>,
}

impl Rows {
    fn new<A: StreamKind>(
        stream_id: Uuid,
        project_id: Uuid,
        expected: i64,
        events: &[A::Event],
        seqs: &[Option<i64>],
        metadata: &crate::Metadata,
    ) -> Result<Self, StoreError> {
        let mut meta = serde_json::to_value(metadata)?;
        let metadata = events
            .iter()
            .map(|e| {
                meta["actor"] = serde_json::to_value(&e.meta.actor)?;
                Ok(meta.clone())
            })
            .collect::<Result<_, serde_json::Error>>()?;
        Ok(Self {
            stream_id,
            stream_type: A::STREAM_TYPE,
            project_id,
            event_ids: events.iter().map(|_| Uuid::now_v7()).collect(),
            versions: (1..=events.len() as i64).map(|i| expected + i).collect(),
            seqs: seqs.to_vec(),
            types: events
                .iter()
                .map(|e| e.payload.event_type().to_string())
                .collect(),
            schema_versions: events
                .iter()
                .map(|e| e.payload.schema_version() as i32)
                .collect(),
            data: events.iter().map(Event::data).collect(),
            metadata,
            occurred_at: events.iter().map(|e| e.meta.occurred_at).collect(),
        })
    }

    /// Takes positions from the head row (held until commit) and inserts.
    async fn insert(self, tx: &Transaction<'_>) -> Result<Vec<StoredEvent>, StoreError> {
        let count = self.event_ids.len() as i64;
        let head: i64 = tx
            .query_one(
                "UPDATE event_log_head SET position = position + $1 RETURNING position",
                &[&count],
            )
            .await?
            .get(0);
        let positions: Vec<i64> = (1..=count).map(|i| head - count + i).collect();
        tx.execute(
            "INSERT INTO events (position, event_id, stream_id, stream_type, project_id, version,
                seq, event_type, schema_version, data, metadata, occurred_at)
             SELECT p, id, $3, $4, $5, v, s, t, sv, d, m, o
             FROM UNNEST($1::bigint[], $2::uuid[], $6::bigint[], $7::bigint[], $8::text[],
                         $9::int[], $10::jsonb[], $11::jsonb[], $12::timestamptz[])
                  AS u(p, id, v, s, t, sv, d, m, o)",
            &[
                &positions,
                &self.event_ids,
                &self.stream_id,
                &self.stream_type,
                &self.project_id,
                &self.versions,
                &self.seqs,
                &self.types,
                &self.schema_versions,
                &self.data,
                &self.metadata,
                &self.occurred_at,
            ],
        )
        .await?;
        let mut stored = Vec::with_capacity(positions.len());
        for (i, position) in positions.into_iter().enumerate() {
            stored.push(StoredEvent {
                position,
                event_id: self.event_ids[i],
                stream_id: self.stream_id,
                stream_type: self.stream_type.to_string(),
                project_id: self.project_id,
                version: self.versions[i],
                seq: self.seqs[i],
                event_type: self.types[i].clone(),
                schema_version: self.schema_versions[i],
                data: self.data[i].clone(),
                actor: serde_json::from_value(self.metadata[i]["actor"].clone())?,
                occurred_at: self.occurred_at[i],
                metadata: self.metadata[i].clone(),
            });
        }
        Ok(stored)
    }
}
