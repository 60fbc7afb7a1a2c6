//! Running a command: load the aggregate, decide, append; on a concurrent
//! change, decide again on the new state (unless the client pinned a version
//! with If-Match, in which case the conflict is theirs to resolve).
//!
//! Within one process, writers of one stream first take turns (see
//! [`crate::aggregates::Aggregates::turn`]), so the compare-and-set only
//! arbitrates between processes. Ticket commands start from the cached
//! aggregates and fall back to the store (see [`crate::aggregates`]).
//!
//! Under an Idempotency-Key, appends mark the key in their transaction, and
//! the retry of a request that died after committing answers from what it
//! committed (see [`crate::keyed`]).

use std::sync::Arc;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use ticketflow_domain::project::{Project, ProjectCommand, ProjectView};
use ticketflow_domain::ticket::{Ticket, TicketCommand};
use ticketflow_domain::{DomainError, EventMeta};
use ticketflow_store::{
    Append, AsOf, Committed, CommittedCommand, Loaded, Metadata, StoreError, StoredEvent,
};
use uuid::Uuid;

use crate::aggregates::Stripe;
use crate::auth::AuthUser;
use crate::command_metrics;
use crate::error::ApiError;
use crate::keyed;
use crate::membership::check_member;
use crate::AppState;

/// Bound on decide-again rounds; each lost round means another writer won.
const MAX_ATTEMPTS: usize = 50;

/// The state a command produced, its events and the position of its last
/// event (or of the stream's last event, when the command changed nothing).
pub struct Outcome<A> {
    pub state: A,
    pub position: i64,
    pub events: Vec<StoredEvent>,
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

/// The metadata of a command's events: they carry its request's key.
fn command_metadata() -> Metadata {
    Metadata {
        idempotency: keyed::command_key(),
        ..Metadata::default()
    }
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

impl TicketTarget {
    fn stream_id(self) -> Uuid {
        match self {
            Self::New { ticket_id, .. } => ticket_id,
            Self::Existing(id) => id,
        }
    }

    fn is_new(self) -> bool {
        matches!(self, Self::New { .. })
    }
}

impl AppState {
    /// Runs a ticket command (see the module's doc), counted by its kind and
    /// outcome. The command is built once first, on an empty project view,
    /// for its kind alone: one refused before any decision (an unknown
    /// ticket, a stale If-Match, the store down) counts under it too.
    pub async fn run_ticket_command(
        &self,
        target: TicketTarget,
        user: &AuthUser,
        if_match: Option<u64>,
        command: impl Fn(EventMeta, ProjectView) -> TicketCommand,
    ) -> Result<Outcome<Ticket>, ApiError> {
        let kind = command(meta(user), ProjectView::default()).kind();
        let result = self
            .decide_ticket_command(target, user, if_match, command)
            .await;
        command_metrics::count(kind, &result);
        result
    }

    async fn decide_ticket_command(
        &self,
        target: TicketTarget,
        user: &AuthUser,
        if_match: Option<u64>,
        command: impl Fn(EventMeta, ProjectView) -> TicketCommand,
    ) -> Result<Outcome<Ticket>, ApiError> {
        if let Some(done) = keyed::already_committed() {
            let as_of = AsOf::Version(done.to_version);
            let ticket = self.events.load_ticket_as_of(done.stream_id, as_of).await?;
            return self.replay(done, ticket).await;
        }
        // A new ticket is a stream nobody else writes: no turn to wait for.
        let mut turn = match target {
            TicketTarget::New { .. } => None,
            TicketTarget::Existing(id) => Some(self.aggregates.turn(id).await),
        };
        // Cached states first; once they have misled us, the store's.
        let mut fresh = false;
        for _ in 0..MAX_ATTEMPTS {
            let (ticket, project) = self
                .command_states(target, turn.as_deref_mut(), fresh)
                .await?;
            let events = match refuse_unless_allowed(target, &ticket, &project, user, if_match) {
                Ok(()) => decide(&ticket.state, command(meta(user), project.state.view()))
                    .await
                    .map_err(ApiError::from),
                Err(refusal) => Err(refusal),
            };
            let events = match events {
                Ok(events) => events,
                Err(_) if !fresh => {
                    fresh = true;
                    continue;
                }
                Err(refusal) => return Err(refusal),
            };
            // Nothing to append means no store check either: like a refusal,
            // only answered on fresh states.
            if events.is_empty() && !fresh {
                fresh = true;
                continue;
            }
            if events.is_empty() {
                return Ok(Outcome {
                    state: ticket.state,
                    position: ticket.last_position,
                    events: Vec::new(),
                });
            }
            let stream_id = target.stream_id();
            match self
                .append_ticket(stream_id, ticket, &project, events)
                .await
            {
                Ok(committed) => return Ok(self.remember(turn.as_deref_mut(), committed)),
                Err(StoreError::VersionConflict { current }) if if_match.is_some() => {
                    forget(turn.as_deref_mut(), stream_id);
                    return Err(ApiError::version_conflict(current));
                }
                Err(StoreError::VersionConflict { .. } | StoreError::ProjectMoved { .. }) => {
                    fresh = true;
                }
                Err(e) => {
                    // The outcome may be unknown (the commit may have landed).
                    forget(turn.as_deref_mut(), stream_id);
                    return Err(e.into());
                }
            }
        }
        Err(contended())
    }

    /// The ticket (empty when new) and its project a command decides on.
    async fn command_states(
        &self,
        target: TicketTarget,
        stripe: Option<&mut Stripe>,
        fresh: bool,
    ) -> Result<(Loaded<Ticket>, Arc<Loaded<Project>>), ApiError> {
        let ticket = match (target, stripe) {
            (TicketTarget::Existing(id), Some(stripe)) => {
                stripe.ticket(self.events.as_ref(), id, fresh).await?
            }
            (TicketTarget::Existing(id), None) => self.events.load_ticket(id).await?,
            (TicketTarget::New { .. }, _) => Loaded::default(),
        };
        let project_id = match target {
            TicketTarget::New { project_id, .. } => project_id,
            TicketTarget::Existing(_) => ticket.state.project_id,
        };
        if !target.is_new() && !ticket.state.exists() {
            return Ok((ticket, Arc::default()));
        }
        let project = self
            .aggregates
            .project(self.events.as_ref(), project_id, fresh)
            .await?;
        Ok((ticket, project))
    }

    async fn append_ticket(
        &self,
        stream_id: Uuid,
        before: Loaded<Ticket>,
        project: &Loaded<Project>,
        events: Vec<ticketflow_domain::ticket::TicketEvent>,
    ) -> Result<Committed<Ticket>, StoreError> {
        let append = Append {
            stream_id,
            project_id: project.state.id,
            before,
            events,
            metadata: command_metadata(),
        };
        let outcome = self
            .events
            .append_ticket_if_project_at(append, project.version)
            .await;
        if let Err(StoreError::ProjectMoved { .. }) = outcome {
            self.aggregates.forget_project(project.state.id);
        }
        outcome
    }

    /// Keeps the ticket a command produced for the next command.
    fn remember(
        &self,
        stripe: Option<&mut Stripe>,
        committed: Committed<Ticket>,
    ) -> Outcome<Ticket> {
        let position = committed.last_position();
        let loaded = Loaded {
            version: committed.state.version,
            last_position: position,
            state: committed.state.clone(),
            replayed: 0,
        };
        match stripe {
            Some(stripe) => stripe.put(loaded),
            None => self.aggregates.offer_ticket(loaded),
        }
        Outcome {
            state: committed.state,
            position,
            events: committed.events,
        }
    }

    /// Runs a project command, counted by its kind and outcome.
    pub async fn run_project_command(
        &self,
        project_id: Uuid,
        user: &AuthUser,
        command: impl Fn(EventMeta) -> ProjectCommand,
    ) -> Result<Outcome<Project>, ApiError> {
        let kind = command(meta(user)).kind();
        let result = self.decide_project_command(project_id, user, command).await;
        command_metrics::count(kind, &result);
        result
    }

    async fn decide_project_command(
        &self,
        project_id: Uuid,
        user: &AuthUser,
        command: impl Fn(EventMeta) -> ProjectCommand,
    ) -> Result<Outcome<Project>, ApiError> {
        if let Some(done) = keyed::already_committed() {
            let as_of = AsOf::Version(done.to_version);
            let project = self
                .events
                .load_project_as_of(done.stream_id, as_of)
                .await?;
            return self.replay(done, project).await;
        }
        let _turn = self.aggregates.turn(project_id).await;
        for _ in 0..MAX_ATTEMPTS {
            let project = self.events.load_project(project_id).await?;
            let events = decide(&project.state, command(meta(user))).await?;
            let append = Append {
                stream_id: project_id,
                project_id,
                before: project,
                events,
                metadata: command_metadata(),
            };
            match self.events.append_project(append).await {
                Ok(c) => {
                    let position = c.last_position();
                    self.aggregates.put_project(Arc::new(Loaded {
                        version: c.state.version,
                        last_position: position,
                        state: c.state.clone(),
                        replayed: 0,
                    }));
                    return Ok(Outcome {
                        position,
                        state: c.state,
                        events: c.events,
                    });
                }
                Err(StoreError::VersionConflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(contended())
    }

    /// The outcome a keyed command's first run committed: `state` is its
    /// stream as that run left it.
    async fn replay<A>(
        &self,
        done: CommittedCommand,
        state: Option<Loaded<A>>,
    ) -> Result<Outcome<A>, ApiError> {
        let state = state.ok_or_else(|| {
            let stream = done.stream_id;
            StoreError::Corrupt(format!("an idempotency mark names stream {stream}, absent"))
        })?;
        let count = done.to_version.saturating_sub(done.from_version) as i64;
        let events = (self.events)
            .stream_events(done.stream_id, done.from_version as i64, count)
            .await?;
        Ok(Outcome {
            position: events.last().map_or(state.last_position, |e| e.position),
            state: state.state,
            events,
        })
    }
}

/// The checks made before deciding, in the order a client sees them: the
/// ticket exists, the project exists, the caller is a member, If-Match holds.
fn refuse_unless_allowed(
    target: TicketTarget,
    ticket: &Loaded<Ticket>,
    project: &Loaded<Project>,
    user: &AuthUser,
    if_match: Option<u64>,
) -> Result<(), ApiError> {
    if !target.is_new() && !ticket.state.exists() {
        return Err(ApiError::not_found("ticket"));
    }
    check_member(&project.state, user)?;
    if let Some(expected) = if_match.filter(|v| *v != ticket.version) {
        tracing::debug!(expected, current = ticket.version, "stale If-Match");
        return Err(ApiError::version_conflict(ticket.version));
    }
    Ok(())
}

fn forget(stripe: Option<&mut Stripe>, stream_id: Uuid) {
    if let Some(stripe) = stripe {
        stripe.forget(stream_id);
    }
}

fn contended() -> ApiError {
    ApiError::from(DomainError::conflict(
        "contended",
        "too many concurrent changes to this resource; retry",
    ))
}
