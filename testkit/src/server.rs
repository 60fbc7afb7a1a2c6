//! The whole server on a real socket, in the mode [`crate::embedded_mode`]
//! picks, and the clients tests talk to it with.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use ticketflow::{Backend, DataDir, Metrics, Origins, RateLimits, Roles};
use ticketflow_nats::Bus;
use ticketflow_realtime::{Settings, Timing};
use ticketflow_store::pg::PgStore;

use crate::scrape::Scrape;
use crate::{embedded_mode, TestDb};

pub const JWT_SECRET: &str = "test-secret-for-ticketflow";

/// Where a test server's data lives.
pub enum Home {
    Services(Box<Services>),
    /// A data directory of its own.
    Embedded {
        dir: tempfile::TempDir,
    },
}

/// A database and a NATS prefix of one's own.
pub struct Services {
    pub db: TestDb,
    pub store: PgStore,
    pub bus: Bus,
}

/// The whole server on 127.0.0.1 on a free port: the API, the gateway and
/// the background workers, in the mode [`embedded_mode`] picks, assembled by
/// the `ticketflow` library as the binary assembles it.
pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    pub backend: Backend,
    pub home: Home,
    /// The highest X-Position seen; GETs wait for it (read-your-writes), as a
    /// client following the contract would.
    last_position: Arc<AtomicI64>,
    config: Config,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// The NATS the tests share: `NATS_URL` (set by scripts/services.sh), else
/// the port that script starts it on.
pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4333".to_string())
}

/// What a test server is started with, beyond its data.
#[derive(Clone)]
pub struct Config {
    /// `WS_QUEUE_LIMIT`.
    pub queue_limit: usize,
    /// Keepalive timings (short ones to watch pings and idle drops).
    pub timing: Timing,
    /// `CORS_ORIGINS` (same-origin only by default, as the binary's).
    pub origins: Origins,
    /// The `RATE_LIMIT_*` settings: the binary's defaults unless a test
    /// sets its own, so the whole suite runs within the defaults.
    pub limits: RateLimits,
    /// `READY_MAX_LAG`.
    pub ready_max_lag: i64,
    /// Whether the relay and projection workers start with the server (a
    /// test may start them later: `server.backend.spawn_workers`).
    pub workers: bool,
    /// `BOARD_SNAPSHOT_EVERY` (the binary's default unless a test sets a
    /// small one, to have several board snapshots).
    pub board_snapshot_every: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            queue_limit: 1024,
            timing: Timing::default(),
            origins: Origins::default(),
            limits: RateLimits::default(),
            ready_max_lag: 10_000,
            workers: true,
            board_snapshot_every: 1000,
        }
    }
}

/// An API and gateway instance: what a `--roles api,realtime` process runs.
pub struct Front {
    pub base: String,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Front {
    /// The routes of a process running `roles` (readiness checks theirs).
    async fn start(backend: &Backend, config: &Config, roles: Roles) -> Self {
        let settings = Settings {
            queue_limit: config.queue_limit,
            replay_limit: 100_000,
            timing: config.timing,
        };
        let metrics = Metrics::install().expect("the metrics recorder");
        let (app, mut tasks) = backend
            .front(
                JWT_SECRET.as_bytes(),
                ticketflow::Front {
                    origins: config.origins.clone(),
                    limits: &config.limits,
                    settings,
                    roles,
                    ready_max_lag: config.ready_max_lag,
                    metrics: Some(&metrics),
                    board_snapshot_every: config.board_snapshot_every,
                },
            )
            .await
            .expect("start the API and gateway");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        tasks.push(tokio::spawn(async move {
            let forever = std::future::pending();
            ticketflow::serve(listener, app, forever)
                .await
                .expect("serve");
        }));
        Self {
            base: format!("http://{addr}"),
            tasks,
        }
    }

    /// The `ws://` URL of `path` on this instance.
    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{path}", self.base.replacen("http://", "ws://", 1))
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}

/// A registered, logged-in user.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub username: String,
    pub token: String,
    pub refresh_token: String,
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// The `X-Position` header as a number.
    pub fn position(&self) -> i64 {
        self.header("x-position")
            .and_then(|p| p.parse().ok())
            .expect("X-Position header")
    }

    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The `field` an error names (422s), "" when none.
    pub fn error_field(&self) -> &str {
        self.body["error"]["field"].as_str().unwrap_or("")
    }
}

/// Reads a response whole; a body that is present must be JSON, since every
/// response of the API is.
async fn read_reply(resp: reqwest::Response) -> Reply {
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "non-JSON body ({status}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    Reply {
        status,
        headers,
        body,
    }
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(Config::default()).await
    }

    pub async fn start_with(config: Config) -> Self {
        let home = if embedded_mode() {
            Home::Embedded {
                dir: tempfile::tempdir().expect("a temporary data directory"),
            }
        } else {
            return Self::start_on(TestDb::create().await, config).await;
        };
        Self::start_in(home, config).await
    }

    /// A server on PostgreSQL and NATS whose database is `db` (one on a
    /// [`crate::PrivatePostgres`], say), whatever the test mode.
    pub async fn start_on(db: TestDb, config: Config) -> Self {
        // Five leaders (relay, projections) hold a connection each.
        let store = db.store_with_pool(20).await;
        let prefix = format!("tf_{}", uuid::Uuid::new_v4().simple());
        let bus = Bus::connect(&nats_url(), &prefix)
            .await
            .expect("connect to NATS");
        bus.ensure_stream().await.expect("create the test's stream");
        let home = Home::Services(Box::new(Services { db, store, bus }));
        Self::start_in(home, config).await
    }

    async fn start_in(home: Home, config: Config) -> Self {
        // Before anything records (see `Metrics::install`): the recorder is
        // the process's, shared by every server a test process starts.
        Metrics::install().expect("the metrics recorder");
        let backend = match &home {
            Home::Services(home) => Backend::services(home.store.clone(), Some(home.bus.clone())),
            Home::Embedded { dir } => {
                let dir = DataDir::open(dir.path()).expect("lock the data directory");
                Backend::embedded(dir)
                    .await
                    .expect("open the embedded stores")
            }
        };
        let mut tasks = if config.workers {
            backend
                .spawn_workers(true, true)
                .expect("start the workers")
        } else {
            Vec::new()
        };
        let mut front = Front::start(&backend, &config, Roles::ALL).await;
        tasks.append(&mut front.tasks);
        Self {
            base: front.base.clone(),
            http: reqwest::Client::new(),
            backend,
            home,
            last_position: Arc::new(AtomicI64::new(0)),
            config,
            tasks,
        }
    }

    /// The same data served by a new server, as after a process restart: the
    /// old one's tasks are stopped and its stores closed first. The new one
    /// listens on another port.
    pub async fn restart(self) -> Self {
        self.restart_after(|_| {}).await
    }

    /// Like [`TestServer::restart`], running `between` while no server runs,
    /// with the data directory in the embedded mode (`None` on PostgreSQL):
    /// where a command-line tool that needs the directory to itself runs.
    pub async fn restart_after(mut self, between: impl FnOnce(Option<&std::path::Path>)) -> Self {
        let placeholder = Home::Embedded {
            dir: tempfile::tempdir().expect("a temporary directory"),
        };
        let home = std::mem::replace(&mut self.home, placeholder);
        let config = self.config.clone();
        let last_position = self.last_position.clone();
        drop(self);
        match &home {
            Home::Embedded { dir } => between(Some(dir.path())),
            Home::Services(_) => between(None),
        }
        let mut server = Self::start_in(home, config).await;
        server.last_position = last_position;
        server
    }

    /// Another API and gateway instance on the same data, or `None` in the
    /// embedded mode, which runs one process.
    pub async fn another_instance(&self) -> Option<Front> {
        match &self.home {
            Home::Services(home) => {
                let backend = Backend::services(home.store.clone(), Some(home.bus.clone()));
                let roles = Roles {
                    relay: false,
                    projections: false,
                    ..Roles::ALL
                };
                Some(Front::start(&backend, &self.config, roles).await)
            }
            Home::Embedded { .. } => {
                eprintln!("embedded mode: one instance only; the multi-instance part is skipped");
                None
            }
        }
    }

    /// The PostgreSQL database, for what only exists there (the CLI).
    pub fn database_url(&self) -> Option<&str> {
        match &self.home {
            Home::Services(home) => Some(&home.db.url),
            Home::Embedded { .. } => None,
        }
    }

    /// How `username`'s password is stored, read beneath the API.
    pub async fn stored_password_hash(&self, username: &str) -> String {
        const SQL: &str = "SELECT password_hash FROM users WHERE username = ";
        match &self.home {
            Home::Services(home) => {
                let row = home
                    .db
                    .client()
                    .await
                    .query_one(&format!("{SQL}$1"), &[&username])
                    .await
                    .expect("the user row");
                row.get(0)
            }
            Home::Embedded { dir } => {
                let db =
                    rusqlite::Connection::open(dir.path().join(DataDir::EVENTS_DB)).expect("open");
                db.query_row(&format!("{SQL}?1"), [username], |row| row.get(0))
                    .expect("the user row")
            }
        }
    }

    /// Ages every refresh token past its expiry in place (thirty days are
    /// not waited for).
    pub async fn expire_refresh_tokens(&self) {
        match &self.home {
            Home::Services(home) => {
                home.db
                    .client()
                    .await
                    .execute(
                        "UPDATE refresh_tokens SET expires_at = now() - interval '1 second'",
                        &[],
                    )
                    .await
                    .expect("age the tokens");
            }
            Home::Embedded { dir } => {
                let db =
                    rusqlite::Connection::open(dir.path().join(DataDir::EVENTS_DB)).expect("open");
                // Stored as microseconds since the epoch.
                let past = (chrono::Utc::now() - chrono::Duration::seconds(1)).timestamp_micros();
                db.execute("UPDATE refresh_tokens SET expires_at = ?1", [past])
                    .expect("age the tokens");
            }
        }
    }

    /// Runs `postgres` or `sqlite` (SQL statements, in the dialect of the
    /// server's event store) on the store beneath the API, as someone with
    /// write access to the database could.
    pub async fn run_sql(&self, postgres: &str, sqlite: &str) {
        match &self.home {
            Home::Services(home) => {
                let client = home.db.client().await;
                client.batch_execute(postgres).await.expect(postgres);
            }
            Home::Embedded { dir } => {
                let db =
                    rusqlite::Connection::open(dir.path().join(DataDir::EVENTS_DB)).expect("open");
                db.execute_batch(sqlite).expect(sqlite);
            }
        }
    }

    /// Drops every stored Idempotency-Key response, as if each keyed request
    /// had died between committing its command and storing its response.
    pub async fn forget_idempotent_responses(&self) {
        const SQL: &str = "UPDATE idempotency_keys
            SET response_status = NULL, response_headers = NULL, response_body = NULL";
        match &self.home {
            Home::Services(home) => {
                let client = home.db.client().await;
                client
                    .execute(SQL, &[])
                    .await
                    .expect("forget the responses");
            }
            Home::Embedded { dir } => {
                let db =
                    rusqlite::Connection::open(dir.path().join(DataDir::EVENTS_DB)).expect("open");
                db.execute(SQL, []).expect("forget the responses");
            }
        }
    }

    /// Stores `message` as the ticket channel's message `seq` of a project,
    /// in the read model, and publishes nothing: what a projection worker
    /// that died between its commit and its publish leaves behind.
    pub async fn store_unpublished_ticket_message(
        &self,
        project_id: &str,
        seq: i64,
        message: &Value,
    ) {
        let project_id = uuid::Uuid::parse_str(project_id).expect("a project id");
        let text = message.to_string();
        match &self.home {
            Home::Services(home) => {
                let client = home.db.client().await;
                let sql = "INSERT INTO rm_ticket_messages (project_id, seq, position, message)
                    VALUES ($1, $2, 0, $3)";
                client
                    .execute(sql, &[&project_id, &seq, &text])
                    .await
                    .expect("store the message");
            }
            Home::Embedded { dir } => {
                let db =
                    rusqlite::Connection::open(dir.path().join(DataDir::READS_DB)).expect("open");
                let sql = "INSERT INTO rm_ticket_messages (project_id, seq, position, message)
                    VALUES (?1, ?2, 0, ?3)";
                db.execute(sql, rusqlite::params![project_id, seq, text])
                    .expect("store the message");
            }
        }
    }

    /// `GET /metrics`, parsed.
    pub async fn scrape(&self) -> Scrape {
        let response = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("scrape /metrics");
        assert_eq!(response.status(), StatusCode::OK, "GET /metrics");
        Scrape::parse(&response.text().await.expect("the metrics"))
    }

    /// The `ws://` URL of `path` on this server.
    pub fn ws_url(&self, path: &str) -> String {
        format!("{}{path}", self.base.replacen("http://", "ws://", 1))
    }

    /// Adds `X-Min-Position` (the newest write seen) to a GET that has none,
    /// and sends it, remembering any `X-Position` in the reply.
    async fn send(
        &self,
        method: &Method,
        mut req: reqwest::RequestBuilder,
        headers: &[(&str, &str)],
    ) -> Reply {
        let explicit = headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("x-min-position"));
        let seen = self.last_position.load(Ordering::SeqCst);
        if *method == Method::GET && !explicit && seen > 0 {
            req = req.header("x-min-position", seen.to_string());
        }
        let reply = read_reply(req.send().await.expect("request")).await;
        if let Some(position) = reply.header("x-position").and_then(|p| p.parse().ok()) {
            self.last_position.fetch_max(position, Ordering::SeqCst);
        }
        reply
    }

    /// Sends a request; `body` is sent as JSON when present.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        self.send(&method, req, headers).await
    }

    /// Sends `body` byte for byte as `application/json`: for bodies a
    /// [`Value`] cannot express (malformed, padded, exactly sized, streamed).
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: impl Into<reqwest::Body>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        self.send(&method, req, headers).await
    }

    /// `POST /api/auth/register` with `body`, unauthenticated.
    pub async fn register(&self, body: Value) -> Reply {
        self.call(Method::POST, "/api/auth/register", None, Some(body), &[])
            .await
    }

    /// `POST /api/auth/login`, unauthenticated.
    pub async fn login(&self, username: &str, password: &str) -> Reply {
        let body = json!({ "username": username, "password": password });
        self.call(Method::POST, "/api/auth/login", None, Some(body), &[])
            .await
    }

    /// Every item of a list endpoint, following `next_cursor` to the end with
    /// pages of `limit`. `path` may already carry a query.
    pub async fn list_all(&self, path: &str, token: &str, limit: usize) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut url = format!("{path}{sep}limit={limit}");
            if let Some(cursor) = &after {
                url.push_str(&format!("&after={cursor}"));
            }
            let page = self.get(&url, token).await;
            assert_eq!(page.status, StatusCode::OK, "list {url}: {:?}", page.body);
            items.extend(page.body["items"].as_array().expect("items").clone());
            match page.body["next_cursor"].as_str() {
                Some(cursor) => after = Some(cursor.to_string()),
                None => return items,
            }
        }
    }

    /// Every event of a ticket from `/history`, in version order.
    pub async fn history(&self, user: &TestUser, ticket_id: &str) -> Vec<Value> {
        let path = format!("/api/tickets/{ticket_id}/history");
        self.list_all(&path, &user.token, 200).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None, &[]).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body), &[])
            .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(token), Some(body), &[])
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, Some(token), None, &[])
            .await
    }

    /// Registers and logs in `username` (password "password123").
    pub async fn user(&self, username: &str) -> TestUser {
        let body = json!({ "username": username, "password": "password123" });
        let reg = self
            .call(
                Method::POST,
                "/api/auth/register",
                None,
                Some(body.clone()),
                &[],
            )
            .await;
        assert_eq!(
            reg.status,
            StatusCode::CREATED,
            "register {username}: {:?}",
            reg.body
        );
        let login = self
            .call(Method::POST, "/api/auth/login", None, Some(body), &[])
            .await;
        assert_eq!(
            login.status,
            StatusCode::OK,
            "login {username}: {:?}",
            login.body
        );
        TestUser {
            id: reg.body["id"].as_str().expect("id").to_string(),
            username: username.to_string(),
            token: login.body["access_token"]
                .as_str()
                .expect("token")
                .to_string(),
            refresh_token: login.body["refresh_token"]
                .as_str()
                .expect("refresh")
                .to_string(),
        }
    }

    /// Creates a project owned by `owner`; returns its JSON.
    pub async fn project(&self, owner: &TestUser, key: &str) -> Value {
        let reply = self
            .post(
                "/api/projects",
                &owner.token,
                json!({ "key": key, "name": format!("{key} project") }),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "create project: {:?}",
            reply.body
        );
        reply.body
    }

    pub async fn add_member(&self, admin: &TestUser, project_id: &str, member: &TestUser) {
        let path = format!("/api/projects/{project_id}/members");
        let reply = self
            .post(&path, &admin.token, json!({ "username": member.username }))
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "add member: {:?}",
            reply.body
        );
    }

    /// Creates a ticket; returns the whole reply (headers matter).
    pub async fn ticket(&self, user: &TestUser, project_id: &str, body: Value) -> Reply {
        let reply = self
            .post(
                &format!("/api/projects/{project_id}/tickets"),
                &user.token,
                body,
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "create ticket: {:?}",
            reply.body
        );
        reply
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        let home = match &self.home {
            Home::Services(home) => home,
            Home::Embedded { dir } => {
                let log = crate::schemas::sqlite_log(&dir.path().join(DataDir::EVENTS_DB));
                crate::schemas::assert_log_matches(&log);
                return;
            }
        };
        // Best effort: the stream is the test's own.
        let bus = home.bus.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                let _ = rt.block_on(bus.delete_stream());
            }
        })
        .join();
    }
}
