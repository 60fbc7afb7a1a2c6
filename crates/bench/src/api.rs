//! The HTTP calls the scenarios make, through one pooled client.

use anyhow::{bail, Context};
use serde_json::{json, Value};
use uuid::Uuid;

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

/// A registered, logged-in user.
#[derive(Clone)]
pub struct User {
    pub username: String,
    pub token: String,
}

/// What a ticket command answered: the ticket's id and new version.
#[derive(Debug, Clone, Copy)]
pub struct Accepted {
    pub ticket_id: Uuid,
    pub version: i64,
}

impl Api {
    pub fn new(base: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            http,
            base: base.to_string(),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> anyhow::Result<(u16, Value)> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.with_context(|| path.to_string())?;
        let status = response.status().as_u16();
        let body = response.json().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    async fn expect(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Value,
        status: u16,
    ) -> anyhow::Result<Value> {
        let (got, reply) = self.call(method, path, token, body).await?;
        if got != status {
            bail!("{path}: expected {status}, got {got}: {reply}");
        }
        Ok(reply)
    }

    pub async fn user(&self, username: &str) -> anyhow::Result<User> {
        let password = "bench-password";
        let credentials = json!({"username": username, "password": password});
        self.expect(
            reqwest::Method::POST,
            "/api/auth/register",
            None,
            credentials.clone(),
            201,
        )
        .await?;
        let login = self
            .expect(
                reqwest::Method::POST,
                "/api/auth/login",
                None,
                credentials,
                200,
            )
            .await?;
        let token = login["access_token"]
            .as_str()
            .context("login without access_token")?;
        Ok(User {
            username: username.to_string(),
            token: token.to_string(),
        })
    }

    /// Creates a project owned by `owner`; returns its id.
    pub async fn project(&self, owner: &User, key: &str) -> anyhow::Result<String> {
        let body = json!({"key": key, "name": format!("Bench {key}")});
        let project = self
            .expect(
                reqwest::Method::POST,
                "/api/projects",
                Some(&owner.token),
                body,
                201,
            )
            .await?;
        Ok(project["id"]
            .as_str()
            .context("project without id")?
            .to_string())
    }

    pub async fn add_member(
        &self,
        admin: &User,
        project: &str,
        member: &User,
    ) -> anyhow::Result<()> {
        let path = format!("/api/projects/{project}/members");
        let body = json!({"username": member.username});
        self.expect(reqwest::Method::POST, &path, Some(&admin.token), body, 201)
            .await
            .map(drop)
    }

    /// Creates a ticket; `None` if the server refused it.
    pub async fn create_ticket(
        &self,
        user: &User,
        project: &str,
        title: &str,
    ) -> anyhow::Result<Option<Accepted>> {
        let path = format!("/api/projects/{project}/tickets");
        let reply = self
            .call(
                reqwest::Method::POST,
                &path,
                Some(&user.token),
                json!({"title": title}),
            )
            .await?;
        Ok(accepted(reply, 201))
    }

    /// Retitles a ticket; `None` if the server refused it.
    pub async fn retitle(
        &self,
        user: &User,
        ticket: Uuid,
        title: &str,
    ) -> anyhow::Result<Option<Accepted>> {
        let path = format!("/api/tickets/{ticket}");
        let reply = self
            .call(
                reqwest::Method::PATCH,
                &path,
                Some(&user.token),
                json!({"title": title}),
            )
            .await?;
        Ok(accepted(reply, 200))
    }
}

fn accepted((status, ticket): (u16, Value), expected: u16) -> Option<Accepted> {
    if status != expected {
        return None;
    }
    Some(Accepted {
        ticket_id: ticket["id"].as_str()?.parse().ok()?,
        version: ticket["version"].as_i64()?,
    })
}
