//! HTTP against the deployment: any instance, the live ones known through
//! [`Targets`]; users whose token is renewed when it runs out.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use rand::seq::SliceRandom;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

/// The instances' base URLs, and which are believed up. Clients prefer the
/// live ones but never trust the list: a request that fails tries another.
#[derive(Clone)]
pub struct Targets {
    ports: Arc<Vec<u16>>,
    up: Arc<Mutex<Vec<bool>>>,
}

impl Targets {
    pub fn new(ports: Vec<u16>) -> Self {
        let up = vec![true; ports.len()];
        Self {
            ports: Arc::new(ports),
            up: Arc::new(Mutex::new(up)),
        }
    }

    pub fn set_up(&self, i: usize, up: bool) {
        if let Ok(mut all) = self.up.lock() {
            all[i] = up;
        }
    }

    /// A random instance believed up (any, if none is).
    pub fn pick(&self) -> u16 {
        let up = self.up.lock().map(|u| u.clone()).unwrap_or_default();
        let live: Vec<u16> = (0..self.ports.len())
            .filter(|&i| up.get(i).copied().unwrap_or(true))
            .map(|i| self.ports[i])
            .collect();
        let from = if live.is_empty() { &*self.ports } else { &live };
        *from
            .choose(&mut rand::thread_rng())
            .unwrap_or(&self.ports[0])
    }
}

pub const PASSWORD: &str = "chaos-password";

/// A registered user and their current access token.
#[derive(Clone)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    token: Arc<Mutex<String>>,
}

impl User {
    pub fn token(&self) -> String {
        self.token.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

/// The answer to one request: its status and JSON body.
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub targets: Targets,
}

impl Api {
    pub fn new(targets: Targets) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            // A paused instance never answers: give up on it and retry elsewhere.
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2))
            .build()?;
        Ok(Self { http, targets })
    }

    /// One request to one random instance; Err only when no answer came.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<Reply> {
        let url = format!("http://127.0.0.1:{}{path}", self.targets.pick());
        let mut request = self.http.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply { status, body })
    }

    /// A request that must succeed with `want` (setup), retried through
    /// faults for up to a minute.
    pub async fn expect(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Value,
        want: u16,
    ) -> anyhow::Result<Value> {
        let key = Uuid::new_v4().to_string();
        let key = (method != Method::GET).then_some(key.as_str());
        let mut last = String::new();
        for _ in 0..120 {
            match self
                .send(method.clone(), path, token, key, Some(&body))
                .await
            {
                Ok(reply) if reply.status.as_u16() == want => return Ok(reply.body),
                Ok(reply) if reply.status.is_server_error() => last = reply.body.to_string(),
                Ok(reply) => bail!("{path}: {} {}", reply.status, reply.body),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        bail!("{path}: no {want} within a minute: {last}")
    }

    pub async fn register(&self, username: &str) -> anyhow::Result<User> {
        let credentials = json!({"username": username, "password": PASSWORD});
        let me = self
            .expect(Method::POST, "/api/auth/register", None, credentials, 201)
            .await?;
        let id = me["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .context("register: no id")?;
        let user = User {
            id,
            username: username.to_string(),
            token: Arc::default(),
        };
        self.login(&user).await?;
        Ok(user)
    }

    /// Logs in again: the access token lives 15 minutes, a long run outlasts it.
    pub async fn login(&self, user: &User) -> anyhow::Result<()> {
        let credentials = json!({"username": user.username, "password": PASSWORD});
        let tokens = self
            .expect(Method::POST, "/api/auth/login", None, credentials, 200)
            .await?;
        let token = tokens["access_token"]
            .as_str()
            .context("login: no access_token")?;
        if let Ok(mut t) = user.token.lock() {
            *t = token.to_string();
        }
        Ok(())
    }
}
