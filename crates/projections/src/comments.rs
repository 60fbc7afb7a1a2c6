//! The comments read model: one row per comment, paged per ticket by the
//! ticket version the comment took.
//!
//! A deleted ticket's comments stay: the ticket itself answers 404, and the
//! API asks for the ticket before its comments.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ticketflow_domain::{Actor, TicketPayload};
use ticketflow_store::{StoreError, StoredEvent};
use tokio_postgres::types::Json;
use tokio_postgres::Transaction;
use uuid::Uuid;

use crate::{unnest_rows, Projection, Tables};

/// Projection "comments", owning `rm_comments`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CommentsProjection;

#[async_trait]
impl Projection for CommentsProjection {
    fn name(&self) -> &'static str {
        "comments"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["rm_comments"]
    }

    async fn apply(
        &self,
        tx: &Transaction<'_>,
        tables: &Tables,
        events: &[&StoredEvent],
    ) -> Result<(), StoreError> {
        let mut rows = Rows::default();
        for event in events {
            rows.push(event)?;
        }
        if rows.ids.is_empty() {
            return Ok(());
        }
        let sql =
            format!(
            "INSERT INTO {} (comment_id, ticket_id, project_id, version, author, body, created_at)
             {} ON CONFLICT (comment_id) DO NOTHING",
            tables.name("rm_comments"),
            unnest_rows(&["uuid", "uuid", "uuid", "bigint", "jsonb", "text", "timestamptz"])
        );
        tx.execute(
            &sql,
            &[
                &rows.ids,
                &rows.ticket_ids,
                &rows.project_ids,
                &rows.versions,
                &rows.authors,
                &rows.bodies,
                &rows.created_at,
            ],
        )
        .await?;
        Ok(())
    }
}

/// The columns of `rm_comments` rows, one array each, for one set-based insert.
#[derive(Default)]
struct Rows<'a> {
    ids: Vec<Uuid>,
    ticket_ids: Vec<Uuid>,
    project_ids: Vec<Uuid>,
    versions: Vec<i64>,
    authors: Vec<Json<&'a Actor>>,
    bodies: Vec<String>,
    created_at: Vec<DateTime<Utc>>,
}

impl<'a> Rows<'a> {
    /// Adds the comment `event` adds, if it is a `CommentAdded`.
    fn push(&mut self, event: &'a StoredEvent) -> Result<(), StoreError> {
        // Checked before decoding: most events are something else.
        if event.stream_type != "ticket" || event.event_type != "CommentAdded" {
            return Ok(());
        }
        let TicketPayload::CommentAdded {
            comment_id, body, ..
        } = event.decode::<TicketPayload>()?.payload
        else {
            return Ok(());
        };
        self.ids.push(comment_id);
        self.ticket_ids.push(event.stream_id);
        self.project_ids.push(event.project_id);
        self.versions.push(event.version);
        self.authors.push(Json(&event.actor));
        self.bodies.push(body);
        self.created_at.push(event.occurred_at);
        Ok(())
    }
}
