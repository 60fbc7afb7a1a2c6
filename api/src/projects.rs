//! Projects and their members.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use ticketflow_domain::project::{Member, NewMember, ProjectCommand};
use uuid::Uuid;

use crate::extract::{JsonBody, Path, Query};
use crate::paging::PageQuery;
use crate::{position_header, views};
use ticketflow_app::path_id;
use ticketflow_app::ApiError;
use ticketflow_app::AppState;
use ticketflow_app::AuthUser;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    pub key: String,
    pub name: String,
}

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

pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    Query(q): Query<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    let page = q.page()?;
    let projects = state.events.projects_of(user.id).await?;
    Ok(Json(page.slice(projects, views::project_summary, |p| {
        p.project_id.to_string()
    })))
}

pub async fn get(
    State(state): State<AppState>,
    user: AuthUser,
    Path(pid): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let project = state
        .member_project(path_id(&pid, "project")?, &user)
        .await?;
    Ok(Json(views::project(&project.state)))
}

pub async fn members(
    State(state): State<AppState>,
    user: AuthUser,
    Path(pid): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Json<Value>, ApiError> {
    let page = q.page()?;
    let project = state
        .member_project(path_id(&pid, "project")?, &user)
        .await?;
    let mut members: Vec<Member> = project.state.members.into_values().collect();
    members.sort_by_key(|m| (m.joined_at, m.user_id));
    Ok(Json(
        page.slice(members, views::member, |m| m.user_id.to_string()),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    pub username: String,
}

pub async fn add_member(
    State(state): State<AppState>,
    user: AuthUser,
    Path(pid): Path<String>,
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

pub async fn remove_member(
    State(state): State<AppState>,
    user: AuthUser,
    Path((pid, uid)): Path<(String, String)>,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostAnnouncement {
    pub title: String,
    pub message: String,
}

/// An admin's announcement: an event in the project's stream, which the
/// notifications projection turns into a `general` notification for every
/// other member.
pub async fn post_announcement(
    State(state): State<AppState>,
    user: AuthUser,
    Path(pid): Path<String>,
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
    let announcement = json!({
        "id": announcement_id,
        "project_id": project_id,
        "title": body.title,
        "message": body.message,
        "author": user.actor(),
        "created_at": created_at,
    });
    Ok((
        StatusCode::CREATED,
        [position_header(outcome.position)],
        Json(announcement),
    )
        .into_response())
}
