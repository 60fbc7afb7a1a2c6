//! The comments read model: one row per comment, paged per ticket by the
//! ticket version the comment took.
//!
//! A deleted ticket's comments stay: the ticket itself answers 404, and the
//! API asks for the ticket before its comments.

use async_trait::async_trait;
use ticketflow_domain::TicketPayload;
use ticketflow_store::{StoreError, StoredEvent};
use tokio_postgres::Transaction;

use crate::{Projection, Tables};

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
        event: &StoredEvent,
    ) -> Result<(), StoreError> {
        // Checked before decoding: nearly every event is something else.
        if event.stream_type != "ticket" || event.event_type != "CommentAdded" {
            return Ok(());
        }
        let TicketPayload::CommentAdded {
            comment_id, body, ..
        } = event.decode::<TicketPayload>()?.payload
        else {
            return Ok(());
        };
        let sql = format!(
            "INSERT INTO {} (comment_id, ticket_id, project_id, version, author, body, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (comment_id) DO NOTHING",
            tables.name("rm_comments")
        );
        tx.execute(
            &sql,
            &[
                &comment_id,
                &event.stream_id,
                &event.project_id,
                &event.version,
                &serde_json::to_value(&event.actor)?,
                &body,
                &event.occurred_at,
            ],
        )
        .await?;
        Ok(())
    }
}
