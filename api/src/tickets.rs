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
use uuid::Uuid;

use crate::extract::{IfMatch, JsonBody, Patch, Path, Query};
use crate::paging::PageQuery;
use crate::{position_header, views};
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTicket {
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    priority: Priority,
    assignee_id: Option<Uuid>,
    #[serde(default)]
    labels: Vec<String>,
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

pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    Path(pid): Path<String>,
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

#[derive(Deserialize)]
pub struct GetQuery {
    as_of: Option<String>,
}

pub async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
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

#[derive(Deserialize)]
pub struct ListQuery {
    status_id: Option<String>,
    assignee_id: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Path(pid): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
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
    let tickets = state
        .reads
        .tickets(project_id, status_id, assignee_id, after, page.limit + 1)
        .await?;
    Ok(Json(page.respond(
        tickets,
        |t| serde_json::json!(views::ticket(t)),
        |t| t.number.to_string(),
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateTicket {
    #[serde(default)]
    title: Patch<String>,
    #[serde(default)]
    description: Patch<String>,
    #[serde(default)]
    priority: Patch<Priority>,
    #[serde(default)]
    labels: Patch<Vec<String>>,
    #[serde(default)]
    status_id: Patch<i64>,
    #[serde(default)]
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

pub async fn update(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
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

pub async fn delete(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddComment {
    pub body: String,
}

pub async fn add_comment(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
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
    let comment = serde_json::json!({
        "id": added_comment(&outcome.events)?,
        "ticket_id": ticket_id,
        "author": user.actor(),
        "body": body.body,
        "created_at": outcome.state.updated_at,
    });
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

pub async fn comments(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let page = q.page()?;
    let after = page.after_number()?;
    let ticket = state.read_ticket(path_id(&id, "ticket")?, &user).await?;
    let comments = state
        .reads
        .comments(ticket.id, after, page.limit + 1)
        .await?;
    Ok(Json(page.respond(comments, views::comment, |c| {
        c.version.to_string()
    })))
}

pub async fn history(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let page = q.page()?;
    let after = page.after_number()?;
    let ticket = state.any_ticket(path_id(&id, "ticket")?, &user).await?;
    let events = state
        .events
        .stream_events(ticket.state.id, after, page.limit + 1)
        .await?;
    Ok(Json(page.respond(events, views::history_item, |e| {
        e.version.to_string()
    })))
}
