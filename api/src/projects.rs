//! Projects and their members.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use ticketflow_domain::project::{Member, NewMember, ProjectCommand};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::consistency::MinPosition;
use crate::extract::{JsonBody, Path, Query};
use crate::idempotency::IdempotencyKey;
use crate::openapi::{Reads, Writes};
use crate::paging::{List, PageQuery};
use crate::position_header;
use crate::views::{self, AnnouncementView, MemberView, NewAnnouncement, ProjectView};
use ticketflow_app::error_docs::Refused;
use ticketflow_app::path_id;
use ticketflow_app::ApiError;
use ticketflow_app::AppState;
use ticketflow_app::AuthUser;

/// A project's path.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ProjectPath {
    /// The project's id.
    #[param(value_type = Uuid)]
    pub pid: String,
}

/// A member's path.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MemberPath {
    /// The project's id.
    #[param(value_type = Uuid)]
    pid: String,
    /// The member's user id.
    #[param(value_type = Uuid)]
    uid: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    /// Unique; the prefix of the project's ticket keys.
    #[schema(pattern = "^[A-Z][A-Z0-9]{1,9}$")]
    pub key: String,
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
}

/// Creates a project; the caller becomes its admin and first member.
#[utoipa::path(
    post, path = "/projects", tag = "projects", operation_id = "create_project",
    request_body = CreateProject,
    params(IdempotencyKey),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new project", body = ProjectView,
            headers(("X-Position" = i64))),
        Writes,
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(body): JsonBody<CreateProject>,
) -> Result<Response, ApiError> {
    let account = state
        .accounts
        .user_by_id(user.id)
        .await?
        .ok_or_else(|| ApiError::unauthenticated("user no longer exists"))?;
    let project_id = Uuid::now_v7();
    let outcome = state
        .run_project_command(project_id, &user, |meta| ProjectCommand::Create {
            meta,
            project_id,
            key: body.key.clone(),
            name: body.name.clone(),
            display_name: account.display_name.clone(),
        })
        .await?;
    let headers = [position_header(outcome.position)];
    Ok((
        StatusCode::CREATED,
        headers,
        Json(views::project(&outcome.state)),
    )
        .into_response())
}

/// The projects the caller is a member of.
#[utoipa::path(
    get, path = "/projects", tag = "projects", operation_id = "list_projects",
    params(PageQuery, MinPosition),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of projects", body = List<ProjectView>),
        Refused<422>, Reads,
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let page = q.page()?;
    let projects = state.events.projects_of(user.id).await?;
    let listed = page.slice(&projects, views::project_summary, |p| {
        p.project_id.to_string()
    });
    Ok(Json(listed).into_response())
}

/// A project of the caller's.
#[utoipa::path(
    get, path = "/projects/{pid}", tag = "projects", operation_id = "get_project",
    params(ProjectPath, MinPosition),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The project", body = ProjectView),
        Refused<403>, Refused<404>, Reads,
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    Path(ProjectPath { pid }): Path<ProjectPath>,
) -> Result<Response, ApiError> {
    let project = state
        .member_project(path_id(&pid, "project")?, &user)
        .await?;
    Ok(Json(views::project(&project.state)).into_response())
}

/// A project's members, in the order they joined.
#[utoipa::path(
    get, path = "/projects/{pid}/members", tag = "projects", operation_id = "list_members",
    params(ProjectPath, PageQuery, MinPosition),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of members", body = List<MemberView>),
        Refused<403>, Refused<404>, Refused<422>, Reads,
    ),
)]
pub async fn members(
    State(state): State<AppState>,
    user: AuthUser,
    Path(ProjectPath { pid }): Path<ProjectPath>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let page = q.page()?;
    let project = state
        .member_project(path_id(&pid, "project")?, &user)
        .await?;
    let mut members: Vec<Member> = project.state.members.into_values().collect();
    members.sort_by_key(|m| (m.joined_at, m.user_id));
    let listed = page.slice(&members, views::member, |m| m.user_id.to_string());
    Ok(Json(listed).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    /// An existing user's (else 422).
    pub username: String,
}

/// Adds a user to the project (admins only).
#[utoipa::path(
    post, path = "/projects/{pid}/members", tag = "projects", operation_id = "add_member",
    request_body = AddMember,
    params(ProjectPath, IdempotencyKey),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The new member", body = MemberView,
            headers(("X-Position" = i64))),
        Refused<403>, Refused<404>, Writes,
    ),
)]
pub async fn add_member(
    State(state): State<AppState>,
    user: AuthUser,
    Path(ProjectPath { pid }): Path<ProjectPath>,
    JsonBody(body): JsonBody<AddMember>,
) -> Result<Response, ApiError> {
    let project_id = path_id(&pid, "project")?;
    let project = state.member_project(project_id, &user).await?;
    // Refused before the username lookup, so a plain member cannot probe which
    // usernames exist; the domain checks the role again when it decides.
    if !project.state.is_admin(user.id) {
        return Err(ApiError::forbidden(
            "only a project admin may change members",
        ));
    }
    let account = state
        .accounts
        .user_by_username(&body.username)
        .await?
        .ok_or_else(|| ApiError::invalid("username", "no user has this username"))?
        .user;
    let new = NewMember {
        user_id: account.user_id,
        username: account.username,
        display_name: account.display_name,
    };
    let outcome = state
        .run_project_command(project_id, &user, |meta| ProjectCommand::AddMember {
            meta,
            user: new.clone(),
        })
        .await?;
    let member = outcome
        .state
        .member(new.user_id)
        .map(views::member)
        .ok_or_else(|| ApiError::not_found("member"))?;
    Ok((
        StatusCode::CREATED,
        [position_header(outcome.position)],
        Json(member),
    )
        .into_response())
}

/// Removes a member (admins only; the last admin stays, 409).
#[utoipa::path(
    delete, path = "/projects/{pid}/members/{uid}", tag = "projects",
    operation_id = "remove_member",
    params(MemberPath, IdempotencyKey),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed; their sockets on the project close with 4403",
            headers(("X-Position" = i64))),
        Refused<403>, Refused<404>, Writes,
    ),
)]
pub async fn remove_member(
    State(state): State<AppState>,
    user: AuthUser,
    Path(MemberPath { pid, uid }): Path<MemberPath>,
) -> Result<Response, ApiError> {
    let project_id = path_id(&pid, "project")?;
    let user_id = path_id(&uid, "member")?;
    state.member_project(project_id, &user).await?;
    let outcome = state
        .run_project_command(project_id, &user, |meta| ProjectCommand::RemoveMember {
            meta,
            user_id,
        })
        .await?;
    Ok((StatusCode::NO_CONTENT, [position_header(outcome.position)]).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostAnnouncement {
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    #[schema(min_length = 1, max_length = 2000)]
    pub message: String,
}

/// Announces something to the project's members (admins only).
///
/// An event in the project's stream, which the notifications projection
/// turns into a `general` notification for every other member.
#[utoipa::path(
    post, path = "/projects/{pid}/announcements", tag = "projects",
    operation_id = "post_announcement",
    request_body = PostAnnouncement,
    params(ProjectPath, IdempotencyKey),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The announcement", body = AnnouncementView,
            headers(("X-Position" = i64))),
        Refused<403>, Refused<404>, Writes,
    ),
)]
pub async fn post_announcement(
    State(state): State<AppState>,
    user: AuthUser,
    Path(ProjectPath { pid }): Path<ProjectPath>,
    JsonBody(body): JsonBody<PostAnnouncement>,
) -> Result<Response, ApiError> {
    let project_id = path_id(&pid, "project")?;
    state.member_project(project_id, &user).await?;
    let announcement_id = Uuid::now_v7();
    // The time of the attempt that was appended (a lost race decides again).
    let posted_at = std::sync::Mutex::new(None);
    let outcome = state
        .run_project_command(project_id, &user, |meta| {
            *posted_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(meta.occurred_at);
            ProjectCommand::PostAnnouncement {
                meta,
                announcement_id,
                title: body.title.clone(),
                message: body.message.clone(),
            }
        })
        .await?;
    let created_at = posted_at
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or_else(ticketflow_app::now);
    let announcement = views::announcement(NewAnnouncement {
        id: announcement_id,
        project_id,
        author: user.actor(),
        title: &body.title,
        message: &body.message,
        created_at,
    });
    Ok((
        StatusCode::CREATED,
        [position_header(outcome.position)],
        Json(announcement),
    )
        .into_response())
}
