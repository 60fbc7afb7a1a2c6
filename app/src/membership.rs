//! Who may see what: a project's members see it and its tickets; anyone
//! else is told the project exists (403) or not (404), in the contract's
//! order.

use ticketflow_domain::project::Project;
use ticketflow_domain::ticket::Ticket;
use ticketflow_store::Loaded;
use uuid::Uuid;

use crate::{ApiError, AppState, AuthUser};

impl AppState {
    /// Loads a project the caller belongs to: 404 if it does not exist, 403
    /// if the caller is not a member.
    pub async fn member_project(
        &self,
        project_id: Uuid,
        user: &AuthUser,
    ) -> Result<Loaded<Project>, ApiError> {
        let project = self.events.load_project(project_id).await?;
        check_member(&project.state, user)?;
        Ok(project)
    }

    /// Refuses a caller who is not a member of the project (403).
    pub async fn require_member(&self, project_id: Uuid, user: &AuthUser) -> Result<(), ApiError> {
        match self.events.membership(project_id, user.id).await? {
            Some(_) => Ok(()),
            None => Err(ApiError::forbidden("not a member of this project")),
        }
    }

    /// A live ticket from the read model, for a member of its project.
    pub async fn read_ticket(&self, ticket_id: Uuid, user: &AuthUser) -> Result<Ticket, ApiError> {
        let ticket = self
            .reads
            .ticket(ticket_id)
            .await?
            .ok_or_else(|| ApiError::not_found("ticket"))?;
        self.require_member(ticket.project_id, user).await?;
        Ok(ticket)
    }

    /// A ticket that exists or existed (history stays readable after deletion).
    pub async fn any_ticket(
        &self,
        ticket_id: Uuid,
        user: &AuthUser,
    ) -> Result<Loaded<Ticket>, ApiError> {
        let ticket = self.events.load_ticket(ticket_id).await?;
        if ticket.version == 0 {
            return Err(ApiError::not_found("ticket"));
        }
        self.member_project(ticket.state.project_id, user).await?;
        Ok(ticket)
    }
}

pub(crate) fn check_member(project: &Project, user: &AuthUser) -> Result<(), ApiError> {
    if !project.exists() {
        return Err(ApiError::not_found("project"));
    }
    if project.member(user.id).is_none() {
        return Err(ApiError::forbidden("not a member of this project"));
    }
    Ok(())
}
