//! The HTTP calls the scenarios make: through one pooled client ([`Api`]),
//! or, for a closed-loop client, over a connection of its own
//! ([`Connection`]).

use std::future::Future;
use std::sync::{Arc, RwLock};

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use uuid::Uuid;

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

const PASSWORD: &str = "bench-password";

/// A registered, logged-in user. Clones share the access token, which
/// [`Api::log_in_again`] replaces (a run longer than its 15 minutes).
#[derive(Clone)]
pub struct User {
    pub username: String,
    token: Arc<RwLock<Arc<str>>>,
}

impl User {
    pub fn token(&self) -> Arc<str> {
        self.token.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
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

    async fn expect(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Value,
        status: u16,
    ) -> anyhow::Result<Value> {
        let (got, reply) = self.clone().call(method, path, token, body).await?;
        if got != status {
            bail!("{path}: expected {status}, got {got}: {reply:?}");
        }
        serde_json::from_slice(&reply).with_context(|| format!("{path}: not JSON"))
    }

    pub async fn user(&self, username: &str) -> anyhow::Result<User> {
        let credentials = json!({"username": username, "password": PASSWORD});
        self.expect(Method::POST, "/api/auth/register", None, credentials, 201)
            .await?;
        let token = self.log_in(username).await?;
        Ok(User {
            username: username.to_string(),
            token: Arc::new(RwLock::new(token)),
        })
    }

    /// Gives `user` (and its clones) a fresh access token.
    pub async fn log_in_again(&self, user: &User) -> anyhow::Result<()> {
        let token = self.log_in(&user.username).await?;
        *user.token.write().unwrap_or_else(|e| e.into_inner()) = token;
        Ok(())
    }

    async fn log_in(&self, username: &str) -> anyhow::Result<Arc<str>> {
        let credentials = json!({"username": username, "password": PASSWORD});
        let login = self
            .expect(Method::POST, "/api/auth/login", None, credentials, 200)
            .await?;
        let token = login["access_token"]
            .as_str()
            .context("login without access_token")?;
        Ok(token.into())
    }

    /// Creates a project owned by `owner`; returns its id.
    pub async fn project(&self, owner: &User, key: &str) -> anyhow::Result<String> {
        let body = json!({"key": key, "name": format!("Bench {key}")});
        let project = self
            .expect(
                Method::POST,
                "/api/projects",
                Some(&owner.token()),
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
        self.expect(Method::POST, &path, Some(&admin.token()), body, 201)
            .await
            .map(drop)
    }
}

/// Sends a request and reads its whole response: through the shared pool
/// ([`Api`]) or over a connection of one's own ([`Connection`]).
pub trait Caller: Send {
    fn call(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> impl Future<Output = anyhow::Result<(u16, Bytes)>> + Send;

    /// Creates a ticket; `None` if the server refused it.
    fn create_ticket(
        &mut self,
        user: &User,
        project: &str,
        title: &str,
    ) -> impl Future<Output = anyhow::Result<Option<Accepted>>> + Send {
        let path = format!("/api/projects/{project}/tickets");
        let body = json!({"title": title});
        async move {
            let token = user.token();
            let reply = self.call(Method::POST, &path, Some(&token), body);
            Ok(accepted(reply.await?, 201))
        }
    }

    /// Retitles a ticket; `None` if the server refused it.
    fn retitle(
        &mut self,
        user: &User,
        ticket: Uuid,
        title: &str,
    ) -> impl Future<Output = anyhow::Result<Option<Accepted>>> + Send {
        let path = format!("/api/tickets/{ticket}");
        let body = json!({"title": title});
        async move {
            let token = user.token();
            let reply = self.call(Method::PATCH, &path, Some(&token), body);
            Ok(accepted(reply.await?, 200))
        }
    }
}

impl Caller for Api {
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> anyhow::Result<(u16, Bytes)> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.with_context(|| path.to_string())?;
        let status = response.status().as_u16();
        Ok((status, response.bytes().await?))
    }
}

/// One keep-alive HTTP/1.1 connection for one closed-loop client, whose
/// every request waits for the previous response: no pool is needed, nor
/// its bookkeeping on each request, which would be paid on the cores the
/// server shares with the load generator.
pub struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    host: String,
}

impl Connection {
    pub async fn open(base: &str) -> anyhow::Result<Self> {
        let host = base
            .strip_prefix("http://")
            .with_context(|| format!("{base} is not an http:// URL"))?
            .to_string();
        let tcp = TcpStream::connect(&host)
            .await
            .with_context(|| format!("connecting to {host}"))?;
        tcp.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                eprintln!("a client connection failed: {e}");
            }
        });
        Ok(Self { sender, host })
    }
}

impl Caller for Connection {
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> anyhow::Result<(u16, Bytes)> {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, &self.host)
            .header(CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request.body(Full::new(serde_json::to_vec(&body)?.into()))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        Ok((status, response.into_body().collect().await?.to_bytes()))
    }
}

/// The part of a ticket a command's answer is read for.
#[derive(Deserialize)]
struct Answer {
    id: Uuid,
    version: i64,
}

fn accepted((status, ticket): (u16, Bytes), expected: u16) -> Option<Accepted> {
    if status != expected {
        return None;
    }
    let answer: Answer = serde_json::from_slice(&ticket).ok()?;
    Some(Accepted {
        ticket_id: answer.id,
        version: answer.version,
    })
}
