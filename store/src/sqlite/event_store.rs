//! The trait implementation that ties the modules together: reads go to the
//! reading connections, appends to the writer.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Row};
use ticketflow_domain::inbox::{Inbox, InboxEvent};
use ticketflow_domain::project::{Project, ProjectEvent, Role};
use ticketflow_domain::ticket::{Ticket, TicketEvent};
use uuid::Uuid;

use super::events::{chain_head, head_position, query_events};
use super::{append, from_micros, micros, SqliteStore};
use crate::chain::ChainHead;
use crate::event_store::{
    Append, AsOf, Committed, EventStore, Loaded, ProjectSummary, StoredEvent,
};
use crate::filter::SqlValue;
use crate::metrics;
use crate::stream::parse_role;
use crate::{BoardSnapshot, EventFilter, StoreError};

#[async_trait]
impl EventStore for SqliteStore {
    async fn load_project(&self, project_id: Uuid) -> Result<Loaded<Project>, StoreError> {
        self.readers
            .read(move |conn| super::load::load(conn, project_id))
            .await
    }

    async fn load_ticket(&self, ticket_id: Uuid) -> Result<Loaded<Ticket>, StoreError> {
        self.readers
            .read(move |conn| super::load::load(conn, ticket_id))
            .await
    }

    async fn load_ticket_as_of(
        &self,
        ticket_id: Uuid,
        as_of: AsOf,
    ) -> Result<Option<Loaded<Ticket>>, StoreError> {
        self.readers
            .read(move |conn| super::load::load_as_of(conn, ticket_id, as_of))
            .await
    }

    async fn load_project_as_of(
        &self,
        project_id: Uuid,
        as_of: AsOf,
    ) -> Result<Option<Loaded<Project>>, StoreError> {
        self.readers
            .read(move |conn| super::load::load_as_of(conn, project_id, as_of))
            .await
    }

    async fn append_project(
        &self,
        append: Append<Project, ProjectEvent>,
    ) -> Result<Committed<Project>, StoreError> {
        let write = self
            .writer
            .write(move |conn| append::append_project(conn, append));
        metrics::append::<Project, _>(write).await
    }

    async fn load_inbox(&self, user_id: Uuid) -> Result<Loaded<Inbox>, StoreError> {
        self.readers
            .read(move |conn| super::load::load(conn, user_id))
            .await
    }

    async fn append_inbox(
        &self,
        append: Append<Inbox, InboxEvent>,
    ) -> Result<Committed<Inbox>, StoreError> {
        let write = self
            .writer
            .write(move |conn| append::append_inbox(conn, append));
        metrics::append::<Inbox, _>(write).await
    }

    async fn append_ticket(
        &self,
        append: Append<Ticket, TicketEvent>,
    ) -> Result<Committed<Ticket>, StoreError> {
        let write = self
            .writer
            .write(move |conn| append::append_ticket(conn, append, None));
        metrics::append::<Ticket, _>(write).await
    }

    async fn append_ticket_if_project_at(
        &self,
        append: Append<Ticket, TicketEvent>,
        project_version: u64,
    ) -> Result<Committed<Ticket>, StoreError> {
        let write = self
            .writer
            .write(move |conn| append::append_ticket(conn, append, Some(project_version)));
        metrics::append::<Ticket, _>(write).await
    }

    async fn stream_events(
        &self,
        stream_id: Uuid,
        after_version: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.readers
            .read(move |conn| {
                query_events(
                    conn,
                    "stream_id = ?1 AND version > ?2 ORDER BY version LIMIT ?3",
                    params![stream_id, after_version, limit],
                )
            })
            .await
    }

    async fn project_events(
        &self,
        project_id: Uuid,
        after_position: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.readers
            .read(move |conn| {
                query_events(
                    conn,
                    "project_id = ?1 AND position > ?2 ORDER BY position LIMIT ?3",
                    params![project_id, after_position, limit],
                )
            })
            .await
    }

    async fn filtered_events(
        &self,
        filter: &EventFilter,
        after_position: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let (sql, values) = filter.clause(after_position, limit, |n| format!("?{n}"));
        let values: Vec<rusqlite::types::Value> = values
            .into_iter()
            .map(|value| match value {
                SqlValue::Uuid(id) => id.as_bytes().to_vec().into(),
                SqlValue::Int(n) => n.into(),
                SqlValue::Time(t) => micros(t).into(),
                SqlValue::Text(text) => text.into(),
            })
            .collect();
        self.readers
            .read(move |conn| query_events(conn, &sql, rusqlite::params_from_iter(values)))
            .await
    }

    async fn read_all(
        &self,
        after_position: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.readers
            .read(move |conn| {
                query_events(
                    conn,
                    "position > ?1 ORDER BY position LIMIT ?2",
                    params![after_position, limit],
                )
            })
            .await
    }

    async fn head_position(&self) -> Result<i64, StoreError> {
        self.readers.read(|conn| head_position(conn)).await
    }

    async fn chain_head(&self) -> Result<ChainHead, StoreError> {
        self.readers.read(|conn| chain_head(conn)).await
    }

    async fn board_snapshot(
        &self,
        project_id: Uuid,
        position: i64,
    ) -> Result<Option<BoardSnapshot>, StoreError> {
        self.readers
            .read(move |conn| super::board::latest_at_most(conn, project_id, position))
            .await
    }

    async fn save_board_snapshot(
        &self,
        project_id: Uuid,
        snapshot: &BoardSnapshot,
    ) -> Result<(), StoreError> {
        let (position, count, states) = (snapshot.position, snapshot.count(), snapshot.encode()?);
        self.writer
            .write(move |conn| super::board::save(conn, project_id, position, count, &states))
            .await
    }

    async fn first_project_event_after(
        &self,
        project_id: Uuid,
        time: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError> {
        self.readers
            .read(move |conn| super::board::first_event_after(conn, project_id, time))
            .await
    }

    async fn membership(
        &self,
        project_id: Uuid,
        user_id: Uuid,
    ) -> Result<Option<Role>, StoreError> {
        self.readers
            .read(move |conn| {
                let role: Option<String> = conn
                    .prepare_cached(
                        "SELECT role FROM project_members WHERE project_id = ?1 AND user_id = ?2",
                    )?
                    .query_row(params![project_id, user_id], |r| r.get(0))
                    .optional()?;
                Ok(role.as_deref().map(parse_role))
            })
            .await
    }

    async fn projects_of(&self, user_id: Uuid) -> Result<Vec<ProjectSummary>, StoreError> {
        self.readers
            .read(move |conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT p.project_id, p.key, p.name, p.statuses, p.created_at, m.role
                     FROM projects p JOIN project_members m ON m.project_id = p.project_id
                     WHERE m.user_id = ?1 ORDER BY p.created_at, p.project_id",
                )?;
                let rows = statement.query_and_then([user_id], project_summary)?;
                rows.collect()
            })
            .await
    }
}

fn project_summary(r: &Row<'_>) -> Result<ProjectSummary, StoreError> {
    let statuses: String = r.get(3)?;
    let role: String = r.get(5)?;
    Ok(ProjectSummary {
        project_id: r.get(0)?,
        key: r.get(1)?,
        name: r.get(2)?,
        statuses: serde_json::from_str(&statuses)?,
        created_at: from_micros(r.get(4)?)?,
        role: parse_role(&role),
    })
}
