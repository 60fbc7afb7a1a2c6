//! The board as of a moment: every live ticket of a project as it stood
//! after the project's events up to a position, computed from the log.
//!
//! It starts from the project's nearest board snapshot at or before the
//! position ([`BoardSnapshot`]) and applies the project's events since with
//! the domain's own [`Ticket`] aggregate, so it is exact at every position
//! and never disagrees with what a command would have seen. Snapshots are
//! written by these queries as they replay: one whenever the events applied
//! since the last reach the spacing, `max(every, live tickets)`. So a query
//! replays fewer than that many events after its snapshot, and the
//! snapshots of a project take about one ticket state per event spaced
//! (a 10,000-ticket board is written at most once per 10,000 events). Only
//! the first query over a long unsnapshotted stretch replays all of it,
//! leaving the snapshots behind for the next.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use ticketflow_domain::{Ticket, TicketPayload};
use ticketflow_store::{BoardSnapshot, StoreError, StoredEvent};
use uuid::Uuid;

use crate::{ApiError, AppState};

/// Project events read from the log at a time while replaying.
const PAGE: i64 = 1000;

/// A moment in a project's past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// A global position (1 to the log's head).
    Position(i64),
    /// Inclusive: after the project's events up to the last one that
    /// occurred at or before it (in log order).
    Time(DateTime<Utc>),
}

/// A project's live tickets at a position, by number.
#[derive(Debug, Clone)]
pub struct Board {
    /// The position the moment came to: the board is the state after every
    /// event up to it.
    pub position: i64,
    pub tickets: Vec<Ticket>,
}

impl AppState {
    /// The board of `project_id` at `moment`, which must lie within the log
    /// (`head`, the log's head, checked by the caller). 404 when the project
    /// did not exist yet.
    pub async fn board_as_of(
        &self,
        project_id: Uuid,
        moment: Moment,
        head: i64,
    ) -> Result<Board, ApiError> {
        let position = match moment {
            Moment::Position(position) => position,
            Moment::Time(time) => self
                .events
                .first_project_event_after(project_id, time)
                .await?
                .map_or(head, |next| next - 1),
        };
        let created = self.events.project_events(project_id, 0, 1).await?;
        if created
            .first()
            .is_none_or(|first| first.position > position)
        {
            return Err(ApiError::not_found("project at that time"));
        }
        let tickets = self.replay_board(project_id, position).await?;
        Ok(Board { position, tickets })
    }

    /// The live tickets after the project's events up to `position`, from
    /// the nearest snapshot, writing the snapshots the replay passes.
    async fn replay_board(
        &self,
        project_id: Uuid,
        position: i64,
    ) -> Result<Vec<Ticket>, StoreError> {
        let snapshot = self.events.board_snapshot(project_id, position).await?;
        let mut board = Replay::from(snapshot, self.board_snapshot_every);
        loop {
            let page = self
                .events
                .project_events(project_id, board.at, PAGE)
                .await?;
            let last_page = page.len() < PAGE as usize;
            for event in page.iter().take_while(|e| e.position <= position) {
                if let Some(snapshot) = board.apply(event)? {
                    self.save_snapshot(project_id, &snapshot).await;
                }
            }
            let past = page.last().is_some_and(|e| e.position > position);
            if last_page || past || board.at >= position {
                break;
            }
        }
        tracing::debug!(
            %project_id, position, from = board.from, replayed = board.replayed,
            "board as of a position"
        );
        Ok(board.into_tickets())
    }

    /// Keeps a snapshot; a failure costs the next query time, not this one
    /// its answer.
    async fn save_snapshot(&self, project_id: Uuid, snapshot: &BoardSnapshot) {
        if let Err(error) = self.events.save_board_snapshot(project_id, snapshot).await {
            tracing::warn!(%project_id, position = snapshot.position, %error, "board snapshot not kept");
        }
    }
}

/// A board being replayed.
struct Replay {
    tickets: HashMap<Uuid, Ticket>,
    /// Position of the last event applied (or of the snapshot).
    at: i64,
    /// The snapshot it started from (0: none).
    from: i64,
    /// Events applied in all, and since the last snapshot.
    replayed: u64,
    since_snapshot: u64,
    every: u64,
}

impl Replay {
    fn from(snapshot: Option<BoardSnapshot>, every: u64) -> Self {
        let (at, tickets) = snapshot.map_or((0, Vec::new()), |s| (s.position, s.tickets));
        Self {
            tickets: tickets.into_iter().map(|t| (t.id, t)).collect(),
            at,
            from: at,
            replayed: 0,
            since_snapshot: 0,
            every: every.max(1),
        }
    }

    /// Applies one of the project's events; returns the snapshot to keep
    /// when the spacing is reached at it.
    fn apply(&mut self, event: &StoredEvent) -> Result<Option<BoardSnapshot>, StoreError> {
        if event.stream_type == "ticket" {
            let decoded = event.decode::<TicketPayload>()?;
            let ticket = self.tickets.entry(event.stream_id).or_default();
            ticket.apply(decoded);
            // No event follows a deletion: the ticket leaves the board.
            if ticket.deleted {
                self.tickets.remove(&event.stream_id);
            }
        }
        self.at = event.position;
        self.replayed += 1;
        self.since_snapshot += 1;
        if self.since_snapshot < self.every.max(self.tickets.len() as u64) {
            return Ok(None);
        }
        self.since_snapshot = 0;
        Ok(Some(BoardSnapshot {
            position: self.at,
            tickets: self.tickets.values().cloned().collect(),
        }))
    }

    fn into_tickets(self) -> Vec<Ticket> {
        let mut tickets: Vec<Ticket> = self.tickets.into_values().collect();
        tickets.sort_unstable_by_key(|t| t.number);
        tickets
    }
}
