//! Ticket commands, and ticket reads: current state from the read models,
//! history and past states (`as_of`) from the event store.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use ticketflow_domain::ticket::{NewTicket, Priority, Ticket, TicketChanges, TicketCommand};
use ticketflow_store::{AsOf, StoreError, StoredEvent};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::consistency::MinPosition;
use crate::extract::{IfMatch, JsonBody, Patch, Path, Query};
use crate::idempotency::IdempotencyKey;
use crate::openapi::{Reads, Writes};
use crate::paging::{List, PageQuery};
use crate::projects::ProjectPath;
use crate::views::{CommentView, HistoryItem, TicketView};
use crate::{position_header, views};
use ticketflow_app::board::Moment;
use ticketflow_app::error_docs::Refused;
use ticketflow_app::params::{self, BadParam};
use ticketflow_app::path_id;
use ticketflow_app::ApiError;
use ticketflow_app::AppState;
use ticketflow_app::AuthUser;
use ticketflow_app::TicketTarget;

/// A ticket with its `ETag`, and `X-Position` when a command produced it.
fn ticket_response(status: StatusCode, ticket: &Ticket, position: Option<i64>) -> Response {
    let etag = (header::ETAG, etag(ticket.version));
    let mut response = (status, [etag], Json(views::ticket(ticket))).into_response();
    if let Some(p) = position {
        let (name, value) = position_header(p);
        response.headers_mut().insert(name, value);
    }
    response
}

fn etag(version: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// A ticket's path.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TicketPath {
    /// The ticket's id.
    #[param(value_type = Uuid)]
    id: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTicket {
    /// Not blank.
    #[schema(min_length = 1, max_length = 200)]
    title: String,
    #[serde(default)]
    #[schema(max_length = 20000)]
    description: String,
    #[serde(default)]
    priority: Priority,
    /// A member of the project (else 422).
    assignee_id: Option<Uuid>,
    /// At most 20, each 1 to 50 characters; duplicates are dropped.
    #[serde(default)]
    #[schema(max_items = 20)]
    labels: Vec<String>,
    /// One of the project's statuses; its first by default.
    status_id: Option<i64>,
}

impl CreateTicket {
    /// The ticket this body asks for, under the id the server gives it.
    pub fn into_ticket(self, ticket_id: Uuid) -> NewTicket {
        NewTicket {
            ticket_id,
            title: self.title,
            description: self.description,
            priority: self.priority,
            assignee_id: self.assignee_id,
            labels: self.labels,
            status_id: self.status_id,
        }
    }
}

/// Creates a ticket in the project.
#[utoipa::path(
    post, path = "/projects/{pid}/tickets", tag = "tickets", operation_id = "create_ticket",
    request_body = CreateTicket,
    params(ProjectPath, IdempotencyKey),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new ticket", body = TicketView,
            headers(("ETag" = String), ("X-Position" = i64))),
        Refused<403>, Refused<404>, Writes,
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Path(ProjectPath { pid }): Path<ProjectPath>,
    JsonBody(body): JsonBody<CreateTicket>,
) -> Result<Response, ApiError> {
    let project_id = path_id(&pid, "project")?;
    let ticket = body.into_ticket(Uuid::now_v7());
    let target = TicketTarget::New {
        project_id,
        ticket_id: ticket.ticket_id,
    };
    let outcome = state
        .run_ticket_command(target, &user, None, |meta, project| TicketCommand::Create {
            meta,
            project,
            ticket: ticket.clone(),
        })
        .await?;
    Ok(ticket_response(
        StatusCode::CREATED,
        &outcome.state,
        Some(outcome.position),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetQuery {
    /// The ticket as it was then: a version (1 to the current one), or an
    /// RFC 3339 time (after every event up to it; before creation, 404).
    #[param(
        pattern = r"^([0-9]+|[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2}))$"
    )]
    as_of: Option<String>,
}

/// A ticket, as it is or as it was (`as_of`, also after deletion).
#[utoipa::path(
    get, path = "/tickets/{id}", tag = "tickets", operation_id = "get_ticket",
    params(TicketPath, GetQuery, MinPosition),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The ticket", body = TicketView, headers(("ETag" = String))),
        Refused<403>, Refused<404>, Refused<422>, Reads,
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    Path(TicketPath { id }): Path<TicketPath>,
    Query(q): Query<GetQuery>,
) -> Result<Response, ApiError> {
    let ticket_id = path_id(&id, "ticket")?;
    let Some(as_of) = q.as_of else {
        let ticket = state.read_ticket(ticket_id, &user).await?;
        return Ok(ticket_response(StatusCode::OK, &ticket, None));
    };
    let current = state.any_ticket(ticket_id, &user).await?;
    let as_of = parse_as_of(&as_of, current.version)?;
    let past = state
        .events
        .load_ticket_as_of(ticket_id, as_of)
        .await?
        .ok_or_else(|| ApiError::not_found("ticket at that time"))?;
    Ok(ticket_response(StatusCode::OK, &past.state, None))
}

/// `as_of`: digits are a version (1 to the current one), anything else an
/// RFC 3339 time.
pub fn parse_as_of(raw: &str, current: u64) -> Result<AsOf, ApiError> {
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        let current = i64::try_from(current).unwrap_or(i64::MAX);
        let version = params::integer("as_of", raw, 1..=current).map_err(BadParam::in_query)?;
        return Ok(AsOf::Version(version as u64));
    }
    DateTime::parse_from_rfc3339(raw)
        .map(|t| AsOf::Time(t.with_timezone(&Utc)))
        .map_err(|_| ApiError::invalid("as_of", "as_of must be a version or an RFC 3339 time"))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only tickets in this status.
    #[param(value_type = Option<i64>, minimum = 0)]
    status_id: Option<String>,
    /// Only tickets assigned to this user.
    #[param(value_type = Option<Uuid>)]
    assignee_id: Option<String>,
    /// The board as it stood then, computed from the log: a global position
    /// (1 to the log's head; `X-Position` of a command) or an RFC 3339 time
    /// (after the project's events up to the last one at or before it).
    /// Before the project existed, 404. The response's `X-Position` is the
    /// position shown.
    #[param(
        pattern = r"^([0-9]+|[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2}))$"
    )]
    as_of: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    page: PageQuery,
}

/// The project's tickets, by number: as they are, or as they were
/// (`as_of`), with the same filters and paging.
#[utoipa::path(
    get, path = "/projects/{pid}/tickets", tag = "tickets", operation_id = "list_tickets",
    params(ProjectPath, ListQuery, PageQuery, MinPosition),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of tickets", body = List<TicketView>,
            headers(("X-Position" = Option<i64>, description = "With `as_of`: the position shown"))),
        Refused<403>, Refused<404>, Refused<422>, Reads,
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Path(ProjectPath { pid }): Path<ProjectPath>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let page = q.page.page()?;
    let after = page.after_number()?;
    let status_id =
        params::query_integer("status_id", q.status_id.as_deref(), params::NON_NEGATIVE)?;
    let assignee_id = q
        .assignee_id
        .map(|raw| {
            Uuid::parse_str(&raw)
                .map_err(|_| ApiError::invalid("assignee_id", "assignee_id must be a UUID"))
        })
        .transpose()?;
    let project_id = path_id(&pid, "project")?;
    state.member_project(project_id, &user).await?;
    let Some(as_of) = q.as_of else {
        let tickets = state
            .reads
            .tickets(project_id, status_id, assignee_id, after, page.limit + 1)
            .await?;
        let listed = page.respond(&tickets, views::ticket, |t| t.number.to_string());
        return Ok(Json(listed).into_response());
    };
    let head = state.events.head_position().await?;
    let moment = match parse_as_of(&as_of, u64::try_from(head).unwrap_or(0))? {
        AsOf::Version(position) => Moment::Position(i64::try_from(position).unwrap_or(head)),
        AsOf::Time(time) => Moment::Time(time),
    };
    let board = state.board_as_of(project_id, moment, head).await?;
    let tickets: Vec<Ticket> = board
        .tickets
        .into_iter()
        .filter(|t| t.number > after.unsigned_abs() && listed(t, status_id, assignee_id))
        .take(page.limit as usize + 1)
        .collect();
    let listed = page.respond(&tickets, views::ticket, |t| t.number.to_string());
    Ok(([position_header(board.position)], Json(listed)).into_response())
}

/// Whether the list's filters keep `ticket`, as the read model's query does.
fn listed(ticket: &Ticket, status_id: Option<i64>, assignee_id: Option<Uuid>) -> bool {
    let status = ticket.status.as_ref().map(|s| s.id);
    let assignee = ticket.assignee.as_ref().map(|a| a.id);
    status_id.is_none_or(|s| status == Some(s)) && assignee_id.is_none_or(|a| assignee == Some(a))
}

/// The fields to change; absent ones stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTicket {
    /// Not blank.
    #[serde(default)]
    #[schema(value_type = String, min_length = 1, max_length = 200)]
    title: Patch<String>,
    #[serde(default)]
    #[schema(value_type = String, max_length = 20000)]
    description: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Priority)]
    priority: Patch<Priority>,
    /// At most 20, each 1 to 50 characters; duplicates are dropped.
    #[serde(default)]
    #[schema(value_type = Vec<String>, max_items = 20)]
    labels: Patch<Vec<String>>,
    /// One of the project's statuses.
    #[serde(default)]
    #[schema(value_type = i64)]
    status_id: Patch<i64>,
    /// A member of the project; `null` unassigns.
    #[serde(default)]
    #[schema(value_type = Option<Uuid>)]
    assignee_id: Patch<Uuid>,
}

impl UpdateTicket {
    pub fn changes(self) -> Result<TicketChanges, ApiError> {
        Ok(TicketChanges {
            title: self.title.required("title")?,
            description: self.description.required("description")?,
            priority: self.priority.required("priority")?,
            labels: self.labels.required("labels")?,
            status_id: self.status_id.required("status_id")?,
            assignee_id: self.assignee_id.nullable(),
        })
    }
}

/// Changes a ticket.
///
/// Each changed field is an event of its own; a change of nothing answers
/// the current state (and the `X-Position` of the ticket's last event).
#[utoipa::path(
    patch, path = "/tickets/{id}", tag = "tickets", operation_id = "update_ticket",
    request_body = UpdateTicket,
    params(TicketPath, IfMatch, IdempotencyKey),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The ticket after the change", body = TicketView,
            headers(("ETag" = String), ("X-Position" = i64))),
        Refused<403>, Refused<404>, Writes,
    ),
)]
pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    Path(TicketPath { id }): Path<TicketPath>,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody<UpdateTicket>,
) -> Result<Response, ApiError> {
    let ticket_id = path_id(&id, "ticket")?;
    let changes = body.changes()?;
    let outcome = state
        .run_ticket_command(
            TicketTarget::Existing(ticket_id),
            &user,
            if_match,
            |meta, project| TicketCommand::Update {
                meta,
                project,
                changes: changes.clone(),
            },
        )
        .await?;
    Ok(ticket_response(
        StatusCode::OK,
        &outcome.state,
        Some(outcome.position),
    ))
}

/// Deletes a ticket: reads answer 404 from now on; its history stays.
#[utoipa::path(
    delete, path = "/tickets/{id}", tag = "tickets", operation_id = "delete_ticket",
    params(TicketPath, IfMatch, IdempotencyKey),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted", headers(("X-Position" = i64))),
        Refused<403>, Refused<404>, Writes,
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    Path(TicketPath { id }): Path<TicketPath>,
    IfMatch(if_match): IfMatch,
) -> Result<Response, ApiError> {
    let ticket_id = path_id(&id, "ticket")?;
    let outcome = state
        .run_ticket_command(
            TicketTarget::Existing(ticket_id),
            &user,
            if_match,
            |meta, project| TicketCommand::Delete { meta, project },
        )
        .await?;
    Ok((StatusCode::NO_CONTENT, [position_header(outcome.position)]).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddComment {
    /// `@username` of a project member mentions them.
    #[schema(min_length = 1, max_length = 10000)]
    pub body: String,
}

/// Comments on a ticket (an event of the ticket: it bumps the version).
#[utoipa::path(
    post, path = "/tickets/{id}/comments", tag = "tickets", operation_id = "add_comment",
    request_body = AddComment,
    params(TicketPath, IfMatch, IdempotencyKey),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The comment", body = CommentView,
            headers(("ETag" = String), ("X-Position" = i64))),
        Refused<403>, Refused<404>, Writes,
    ),
)]
pub async fn add_comment(
    State(state): State<AppState>,
    user: AuthUser,
    Path(TicketPath { id }): Path<TicketPath>,
    IfMatch(if_match): IfMatch,
    JsonBody(body): JsonBody<AddComment>,
) -> Result<Response, ApiError> {
    let ticket_id = path_id(&id, "ticket")?;
    let comment_id = Uuid::now_v7();
    let outcome = state
        .run_ticket_command(
            TicketTarget::Existing(ticket_id),
            &user,
            if_match,
            |meta, project| TicketCommand::Comment {
                meta,
                project,
                comment_id,
                body: body.body.clone(),
            },
        )
        .await?;
    let author = user.actor();
    let comment = views::added_comment(
        added_comment(&outcome.events)?,
        ticket_id,
        &author,
        &body.body,
        outcome.state.updated_at,
    );
    let headers = [(header::ETAG, etag(outcome.state.version))];
    let mut response = (StatusCode::CREATED, headers, Json(comment)).into_response();
    let (name, value) = position_header(outcome.position);
    response.headers_mut().insert(name, value);
    Ok(response)
}

/// The id of the comment a command added, as committed: on the retry of a
/// keyed request that died after committing (see
/// [`ticketflow_app::keyed`]), the id made by this run is not the stored one.
fn added_comment(events: &[StoredEvent]) -> Result<Uuid, ApiError> {
    #[derive(Deserialize)]
    struct Added {
        comment_id: Uuid,
    }
    let added = events.iter().find(|e| e.event_type == "CommentAdded");
    let added = added.ok_or_else(|| StoreError::Corrupt("a comment without its event".into()))?;
    Ok(added
        .data
        .parse::<Added>()
        .map_err(StoreError::from)?
        .comment_id)
}

/// A ticket's comments, oldest first.
#[utoipa::path(
    get, path = "/tickets/{id}/comments", tag = "tickets", operation_id = "list_comments",
    params(TicketPath, PageQuery, MinPosition),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of comments", body = List<CommentView>),
        Refused<403>, Refused<404>, Refused<422>, Reads,
    ),
)]
pub async fn comments(
    State(state): State<AppState>,
    user: AuthUser,
    Path(TicketPath { id }): Path<TicketPath>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let page = q.page()?;
    let after = page.after_number()?;
    let ticket = state.read_ticket(path_id(&id, "ticket")?, &user).await?;
    let comments = state
        .reads
        .comments(ticket.id, after, page.limit + 1)
        .await?;
    let listed = page.respond(&comments, views::comment, |c| c.version.to_string());
    Ok(Json(listed).into_response())
}

/// Every event of a ticket in version order, also after its deletion.
#[utoipa::path(
    get, path = "/tickets/{id}/history", tag = "tickets", operation_id = "ticket_history",
    params(TicketPath, PageQuery, MinPosition),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the ticket's events", body = List<HistoryItem>),
        Refused<403>, Refused<404>, Refused<422>, Reads,
    ),
)]
pub async fn history(
    State(state): State<AppState>,
    user: AuthUser,
    Path(TicketPath { id }): Path<TicketPath>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let page = q.page()?;
    let after = page.after_number()?;
    let ticket = state.any_ticket(path_id(&id, "ticket")?, &user).await?;
    let events = state
        .events
        .stream_events(ticket.state.id, after, page.limit + 1)
        .await?;
    let listed = page.respond(&events, views::history_item, |e| e.version.to_string());
    Ok(Json(listed).into_response())
}
