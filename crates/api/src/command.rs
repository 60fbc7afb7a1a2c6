//! Running a command: load the aggregate, decide, append; on a concurrent
//! change, decide again on the new state (unless the client pinned a version
//! with If-Match, in which case the conflict is theirs to resolve).
//!
//! Within one process, writers of one stream first take turns (see
//! [`stream_turn`]), so the compare-and-set only arbitrates between processes.

use std::sync::LazyLock;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use ticketflow_domain::project::{Project, ProjectCommand, ProjectView};
use ticketflow_domain::ticket::{Ticket, TicketCommand};
use ticketflow_domain::{DomainError, EventMeta};
use ticketflow_store::{Append, Loaded, Metadata, StoreError};
use tokio::sync::{Mutex, MutexGuard};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::AppState;

/// Bound on decide-again rounds; each lost round means another writer won.
const MAX_ATTEMPTS: usize = 50;

/// Stripes of [`stream_turn`]: enough that unrelated streams rarely share one.
const TURN_STRIPES: usize = 1024;

static STREAM_TURNS: LazyLock<Vec<Mutex<()>>> =
    LazyLock::new(|| (0..TURN_STRIPES).map(|_| Mutex::new(())).collect());

/// The turn a writer of `stream_id` holds from loading to appending. Without
/// it, N concurrent writers of one ticket all load, decide, and all but one
/// lose the compare-and-set, round after round: the work grows as N², and
/// past [`MAX_ATTEMPTS`] lost rounds a writer is turned away, which loses its
/// update. Striped, so memory stays bounded; two streams sharing a stripe
/// merely take turns. A command holds one turn at a time, so turns cannot
/// deadlock.
async fn stream_turn(stream_id: Uuid) -> MutexGuard<'static, ()> {
    let stripe = (stream_id.as_u128() % TURN_STRIPES as u128) as usize;
    STREAM_TURNS[stripe].lock().await
}

/// The state a command produced and the position of its last event (or of
/// the stream's last event, when the command changed nothing).
pub struct Outcome<A> {
    pub state: A,
    pub position: i64,
}

/// Runs `handle` through cqrs-es's sink, yielding the events without keeping
/// the state it mutated (the store rebuilds it with what it assigns).
async fn decide<A: Aggregate<Services = ()> + Clone>(
    state: &A,
    command: A::Command,
) -> Result<Vec<A::Event>, A::Error> {
    let mut scratch = state.clone();
    let sink = EventSink::default();
    scratch.handle(command, &(), &sink).await?;
    Ok(sink.collect().await)
}

fn meta(user: &AuthUser) -> EventMeta {
    EventMeta {
        actor: user.actor(),
        occurred_at: crate::now(),
    }
}

/// Which ticket a command targets.
#[derive(Clone, Copy)]
pub enum TicketTarget {
    New { project_id: Uuid, ticket_id: Uuid },
    Existing(Uuid),
}

impl AppState {
    /// Loads a project the caller belongs to: 404 if it does not exist, 403
    /// if the caller is not a member.
    pub async fn member_project(
        &self,
        project_id: Uuid,
        user: &AuthUser,
    ) -> Result<Loaded<Project>, ApiError> {
        let project = self.events.load_project(project_id).await?;
        if !project.state.exists() {
            return Err(ApiError::not_found("project"));
        }
        if project.state.member(user.id).is_none() {
            return Err(ApiError::forbidden("not a member of this project"));
        }
        Ok(project)
    }

    /// Refuses a caller who is not a member of the project (403).
    pub async fn require_member(&self, project_id: Uuid, user: &AuthUser) -> Result<(), ApiError> {
        match self.events.membership(project_id, user.id).await? {
            Some(_) => Ok(()),
            None => Err(ApiError::forbidden("not a member of this project")),
        }
    }

    /// A connection to the read models.
    pub async fn read_client(&self) -> Result<deadpool_postgres::Object, ApiError> {
        self.reads
            .get()
            .await
            .map_err(|e| ApiError::from(ticketflow_store::StoreError::Unavailable(e.to_string())))
    }

    /// Loads a live ticket and its project for a member.
    pub async fn member_ticket(
        &self,
        ticket_id: Uuid,
        user: &AuthUser,
    ) -> Result<(Loaded<Ticket>, Loaded<Project>), ApiError> {
        let ticket = self.events.load_ticket(ticket_id).await?;
        if !ticket.state.exists() {
            return Err(ApiError::not_found("ticket"));
        }
        let project = self.member_project(ticket.state.project_id, user).await?;
        Ok((ticket, project))
    }

    pub async fn run_ticket_command(
        &self,
        target: TicketTarget,
        user: &AuthUser,
        if_match: Option<u64>,
        command: impl Fn(EventMeta, ProjectView) -> TicketCommand,
    ) -> Result<Outcome<Ticket>, ApiError> {
        // A new ticket is a stream nobody else writes: no turn to wait for.
        let _turn = match target {
            TicketTarget::New { .. } => None,
            TicketTarget::Existing(id) => Some(stream_turn(id).await),
        };
        for _ in 0..MAX_ATTEMPTS {
            let (ticket, project, stream_id) = match target {
                TicketTarget::New {
                    project_id,
                    ticket_id,
                } => (
                    Loaded::default(),
                    self.member_project(project_id, user).await?,
                    ticket_id,
                ),
                TicketTarget::Existing(id) => {
                    let (ticket, project) = self.member_ticket(id, user).await?;
                    (ticket, project, id)
                }
            };
            if let Some(expected) = if_match.filter(|v| *v != ticket.version) {
                tracing::debug!(expected, current = ticket.version, "stale If-Match");
                return Err(ApiError::version_conflict(ticket.version));
            }
            let events = decide(&ticket.state, command(meta(user), project.state.view())).await?;
            if events.is_empty() {
                return Ok(Outcome {
                    state: ticket.state,
                    position: ticket.last_position,
                });
            }
            let append = Append {
                stream_id,
                project_id: project.state.id,
                before: ticket,
                events,
                metadata: Metadata::default(),
            };
            match self.events.append_ticket(append).await {
                Ok(c) => {
                    return Ok(Outcome {
                        position: c.last_position(),
                        state: c.state,
                    })
                }
                Err(StoreError::VersionConflict { .. }) if if_match.is_none() => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(contended())
    }

    pub async fn run_project_command(
        &self,
        project_id: Uuid,
        user: &AuthUser,
        command: impl Fn(EventMeta) -> ProjectCommand,
    ) -> Result<Outcome<Project>, ApiError> {
        let _turn = stream_turn(project_id).await;
        for _ in 0..MAX_ATTEMPTS {
            let project = self.events.load_project(project_id).await?;
            let events = decide(&project.state, command(meta(user))).await?;
            let append = Append {
                stream_id: project_id,
                project_id,
                before: project,
                events,
                metadata: Metadata::default(),
            };
            match self.events.append_project(append).await {
                Ok(c) => {
                    return Ok(Outcome {
                        position: c.last_position(),
                        state: c.state,
                    })
                }
                Err(StoreError::VersionConflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(contended())
    }
}

fn contended() -> ApiError {
    ApiError::from(DomainError::conflict(
        "contended",
        "too many concurrent changes to this resource; retry",
    ))
}
