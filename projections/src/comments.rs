//! The comments read model: one row per comment, paged per ticket by the
//! ticket version the comment took.
//!
//! A deleted ticket's comments stay: the ticket itself answers 404, and the
//! API asks for the ticket before its comments.

use async_trait::async_trait;
use ticketflow_domain::TicketPayload;
use ticketflow_store::{StoreError, StoredEvent};

use crate::read_store::{CommentRow, ReadTx};
use crate::{ChannelMessage, Projection};

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

    fn insert_only(&self) -> &'static [&'static str] {
        &["rm_comments"]
    }

    async fn apply(
        &self,
        tx: &mut dyn ReadTx,
        events: &[&StoredEvent],
    ) -> Result<Vec<ChannelMessage>, StoreError> {
        let mut rows = Vec::new();
        for event in events {
            if let Some(row) = comment_row(event)? {
                rows.push(row);
            }
        }
        if !rows.is_empty() {
            tx.rows().insert_comments(&rows).await?;
        }
        Ok(Vec::new())
    }
}

/// The comment `event` adds, if it is a `CommentAdded`.
fn comment_row(event: &StoredEvent) -> Result<Option<CommentRow<'_>>, StoreError> {
    // Checked before decoding: most events are something else.
    if event.stream_type != "ticket" || event.event_type != "CommentAdded" {
        return Ok(None);
    }
    let TicketPayload::CommentAdded {
        comment_id, body, ..
    } = event.decode::<TicketPayload>()?.payload
    else {
        return Ok(None);
    };
    Ok(Some(CommentRow {
        comment_id,
        ticket_id: event.stream_id,
        project_id: event.project_id,
        version: event.version,
        author: &event.actor,
        body,
        created_at: event.occurred_at,
    }))
}
