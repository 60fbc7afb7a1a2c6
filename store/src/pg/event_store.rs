//! Reading the log, and the trait implementation that ties the modules together.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use ticketflow_domain::inbox::{Inbox, InboxEvent};
use ticketflow_domain::project::{Project, ProjectEvent, Role};
use ticketflow_domain::ticket::{Ticket, TicketEvent};
use tokio_postgres::types::{Json, ToSql};
use tokio_postgres::Row;
use uuid::Uuid;

use super::{prepared, PgStore};
use crate::chain::{ChainHead, Hash};
use crate::event_store::{
    Append, AsOf, Committed, EventStore, Loaded, ProjectSummary, RawJson, StoredEvent,
};
use crate::filter::SqlValue;
use crate::metrics;
use crate::stream::{parse_role, EVENT_COLUMNS};
use crate::{BoardSnapshot, EventFilter, StoreError};

pub(super) fn stored_event(row: &Row) -> Result<StoredEvent, StoreError> {
    let metadata = raw_json(row, 10)?;
    Ok(StoredEvent {
        position: row.try_get(0)?,
        event_id: row.try_get(1)?,
        stream_id: row.try_get(2)?,
        stream_type: row.try_get(3)?,
        project_id: row.try_get(4)?,
        version: row.try_get(5)?,
        seq: row.try_get(6)?,
        event_type: row.try_get(7)?,
        schema_version: row.try_get(8)?,
        data: raw_json(row, 9)?,
        actor: metadata.actor()?,
        metadata,
        occurred_at: row.try_get(11)?,
        hash: hash_column(row, 12)?,
    })
}

/// A nullable `bytea` hash column.
pub(super) fn hash_column(row: &Row, column: usize) -> Result<Option<Hash>, StoreError> {
    let bytes: Option<&[u8]> = row.try_get(column)?;
    bytes.map(Hash::from_slice).transpose()
}

/// A `jsonb` column as its text, unparsed.
fn raw_json(row: &Row, column: usize) -> Result<RawJson, StoreError> {
    let Json(text) = row.try_get::<_, Json<Box<RawValue>>>(column)?;
    Ok(RawJson::from(text))
}

impl PgStore {
    async fn query_events(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let client = self.client().await?;
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE {sql}");
        prepared::query(&client, &sql, params)
            .await?
            .iter()
            .map(stored_event)
            .collect()
    }
}

#[async_trait]
impl EventStore for PgStore {
    async fn load_project(&self, project_id: Uuid) -> Result<Loaded<Project>, StoreError> {
        self.bounded(async move { self.load(project_id).await })
            .await
    }

    async fn load_ticket(&self, ticket_id: Uuid) -> Result<Loaded<Ticket>, StoreError> {
        self.bounded(async move { self.load(ticket_id).await })
            .await
    }

    async fn load_ticket_as_of(
        &self,
        ticket_id: Uuid,
        as_of: AsOf,
    ) -> Result<Option<Loaded<Ticket>>, StoreError> {
        self.bounded(async move { self.load_as_of(ticket_id, as_of).await })
            .await
    }

    async fn load_project_as_of(
        &self,
        project_id: Uuid,
        as_of: AsOf,
    ) -> Result<Option<Loaded<Project>>, StoreError> {
        self.bounded(async move { self.load_as_of(project_id, as_of).await })
            .await
    }

    async fn append_project(
        &self,
        append: Append<Project, ProjectEvent>,
    ) -> Result<Committed<Project>, StoreError> {
        let append = self.bounded(async move { self.append_project_events(append).await });
        metrics::append::<Project, _>(append).await
    }

    async fn load_inbox(&self, user_id: Uuid) -> Result<Loaded<Inbox>, StoreError> {
        self.bounded(async move { self.load(user_id).await }).await
    }

    async fn append_inbox(
        &self,
        append: Append<Inbox, InboxEvent>,
    ) -> Result<Committed<Inbox>, StoreError> {
        let append = self.bounded(async move { self.append_inbox_events(append).await });
        metrics::append::<Inbox, _>(append).await
    }

    async fn append_ticket(
        &self,
        append: Append<Ticket, TicketEvent>,
    ) -> Result<Committed<Ticket>, StoreError> {
        let append = self.bounded(async move { self.committer().append(append, None).await });
        metrics::append::<Ticket, _>(append).await
    }

    async fn append_ticket_if_project_at(
        &self,
        append: Append<Ticket, TicketEvent>,
        project_version: u64,
    ) -> Result<Committed<Ticket>, StoreError> {
        let append = self
            .bounded(async move { self.committer().append(append, Some(project_version)).await });
        metrics::append::<Ticket, _>(append).await
    }

    async fn stream_events(
        &self,
        stream_id: Uuid,
        after_version: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.bounded(async move {
            self.query_events(
                "stream_id = $1 AND version > $2 ORDER BY version LIMIT $3",
                &[&stream_id, &after_version, &limit],
            )
            .await
        })
        .await
    }

    async fn project_events(
        &self,
        project_id: Uuid,
        after_position: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.bounded(async move {
            self.query_events(
                "project_id = $1 AND position > $2 ORDER BY position LIMIT $3",
                &[&project_id, &after_position, &limit],
            )
            .await
        })
        .await
    }

    async fn filtered_events(
        &self,
        filter: &EventFilter,
        after_position: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let (sql, values) = filter.clause(after_position, limit, |n| format!("${n}"));
        let values: Vec<Box<dyn ToSql + Sync + Send>> = values
            .into_iter()
            .map(|value| -> Box<dyn ToSql + Sync + Send> {
                match value {
                    SqlValue::Uuid(id) => Box::new(id),
                    SqlValue::Int(n) => Box::new(n),
                    SqlValue::Time(t) => Box::new(t),
                    SqlValue::Text(text) => Box::new(text),
                }
            })
            .collect();
        let params: Vec<&(dyn ToSql + Sync)> = values.iter().map(|v| v.as_ref() as _).collect();
        self.bounded(self.query_events(&sql, &params)).await
    }

    async fn read_all(
        &self,
        after_position: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.bounded(async move {
            self.query_events(
                "position > $1 ORDER BY position LIMIT $2",
                &[&after_position, &limit],
            )
            .await
        })
        .await
    }

    async fn head_position(&self) -> Result<i64, StoreError> {
        self.bounded(async move {
            let client = self.client().await?;
            // Not the counter row: reading it would wait behind an append's lock.
            let row = prepared::query_one(
                &client,
                "SELECT coalesce(max(position), 0) FROM events",
                &[],
            )
            .await?;
            Ok(row.get(0))
        })
        .await
    }

    async fn chain_head(&self) -> Result<ChainHead, StoreError> {
        self.bounded(async move {
            let client = self.client().await?;
            // The row appends move: committed with their events, so it never
            // names an event a reader cannot see yet.
            let row =
                prepared::query_one(&client, "SELECT position, hash FROM event_log_head", &[])
                    .await?;
            Ok(ChainHead {
                position: row.try_get(0)?,
                hash: hash_column(&row, 1)?,
            })
        })
        .await
    }

    async fn board_snapshot(
        &self,
        project_id: Uuid,
        position: i64,
    ) -> Result<Option<BoardSnapshot>, StoreError> {
        let row = self
            .bounded(async move {
                let client = self.client().await?;
                Ok(prepared::query_opt(
                    &client,
                    "SELECT position, states FROM board_snapshots
                     WHERE project_id = $1 AND position <= $2 ORDER BY position DESC LIMIT 1",
                    &[&project_id, &position],
                )
                .await?)
            })
            .await?;
        row.map(|r| BoardSnapshot::decode(r.get(0), r.get(1)))
            .transpose()
    }

    async fn save_board_snapshot(
        &self,
        project_id: Uuid,
        snapshot: &BoardSnapshot,
    ) -> Result<(), StoreError> {
        let states = snapshot.encode()?;
        self.bounded(async move {
            let client = self.client().await?;
            prepared::execute(
                &client,
                "INSERT INTO board_snapshots (project_id, position, tickets, states)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&project_id, &snapshot.position, &snapshot.count(), &states],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn first_project_event_after(
        &self,
        project_id: Uuid,
        time: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        self.bounded(async move {
            let client = self.client().await?;
            let row = prepared::query_opt(
                &client,
                "SELECT position FROM events WHERE project_id = $1 AND occurred_at > $2
                 ORDER BY position LIMIT 1",
                &[&project_id, &time],
            )
            .await?;
            Ok(row.map(|r| r.get(0)))
        })
        .await
    }

    async fn membership(
        &self,
        project_id: Uuid,
        user_id: Uuid,
    ) -> Result<Option<Role>, StoreError> {
        self.bounded(async move {
            let client = self.client().await?;
            let row = prepared::query_opt(
                &client,
                "SELECT role FROM project_members WHERE project_id = $1 AND user_id = $2",
                &[&project_id, &user_id],
            )
            .await?;
            Ok(row.map(|r| parse_role(r.get(0))))
        })
        .await
    }

    async fn projects_of(&self, user_id: Uuid) -> Result<Vec<ProjectSummary>, StoreError> {
        self.bounded(async move {
            let client = self.client().await?;
            let rows = prepared::query(
                &client,
                "SELECT p.project_id, p.key, p.name, p.statuses, p.created_at, m.role
                     FROM projects p JOIN project_members m ON m.project_id = p.project_id
                     WHERE m.user_id = $1 ORDER BY p.created_at, p.project_id",
                &[&user_id],
            )
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(ProjectSummary {
                        project_id: r.get(0),
                        key: r.get(1),
                        name: r.get(2),
                        statuses: serde_json::from_value(r.get(3))?,
                        created_at: r.get(4),
                        role: parse_role(r.get(5)),
                    })
                })
                .collect()
        })
        .await
    }
}
