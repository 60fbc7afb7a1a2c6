//! Graceful shutdown. In process, in both modes: a draining server answers
//! `/readyz` 503 `draining` (`/healthz` still 200), closes every socket with
//! 1012, refuses new handshakes, ends `follow=true` feeds, and counts its
//! sockets down to none. With real processes (PostgreSQL + NATS only: the
//! embedded mode runs one instance): two instances on one database and NATS
//! prefix under load, one of them sent SIGTERM; no acknowledged command is
//! lost or doubled, every socket of the stopped instance is closed with 1012
//! and resumes on the other with `since`, without a gap or a duplicate, and
//! the process exits 0 within its shutdown timeout.
//!
//! Run: `cargo test -p ticketflow --test graceful_restart -- --nocapture`
//! (the multi-process test prints its counts).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use ticketflow_testkit::process::ProcessData;
use ticketflow_testkit::ws::{close_code, connect, next_json, refused, Socket, WAIT};
use ticketflow_testkit::{embedded_mode, setup, ServerProcess};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// How long a draining server may take to close its sockets and feeds.
const DRAINED_WITHIN: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_draining_server_closes_its_sockets_with_1012_and_is_not_ready() {
    let s = setup().await;
    let server = &s.server;
    let token = &s.alice.token;
    let tickets = format!("/ws/projects/{}/tickets/?token={token}", s.project_id);
    let presence = format!("/ws/projects/{}/presence/?token={token}", s.project_id);
    let notifications = format!("/ws/notifications/?token={token}");
    let mut sockets = Vec::new();
    for path in [&tickets, &presence, &notifications] {
        let mut socket = connect(&server.ws_url(path)).await;
        assert_eq!(
            next_json(&mut socket).await["type"],
            "connection_established"
        );
        sockets.push(socket);
    }
    let feed = server
        .http
        .get(format!(
            "{}/api/projects/{}/events?follow=true",
            server.base, s.project_id
        ))
        .bearer_auth(token)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .expect("the feed");
    assert_eq!(feed.status(), StatusCode::OK);
    assert_eq!(server.backend.drain().open_sockets(), 3);

    server.backend.drain().begin();
    let ready = server
        .call(reqwest::Method::GET, "/readyz", None, None, &[])
        .await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.body, json!({ "status": "draining", "checks": {} }));
    let alive = server
        .call(reqwest::Method::GET, "/healthz", None, None, &[])
        .await;
    assert_eq!(alive.status, StatusCode::OK);

    for socket in &mut sockets {
        assert_eq!(close_code(socket).await, 1012);
    }
    assert_eq!(refused(&server.ws_url(&tickets)).await, 503);
    // The feed ends (its client follows on from its last position elsewhere).
    let ended = tokio::time::timeout(DRAINED_WITHIN, feed.bytes()).await;
    ended.expect("the feed ended").expect("a whole body");
    tokio::time::timeout(DRAINED_WITHIN, server.backend.drain().sockets_closed())
        .await
        .expect("every socket closed");
}

// ---- One process and its signal ---------------------------------------

/// A `ticketflow serve` process in this run's mode, and the data it uses.
struct Solo {
    process: ServerProcess,
    data: ProcessData,
}

impl Solo {
    async fn start(shutdown_timeout_ms: &str) -> Self {
        let data = ProcessData::new().await;
        let env = [
            ("DATABASE_POOL_SIZE", "4"),
            ("RUST_LOG", "info"),
            ("SHUTDOWN_TIMEOUT_MS", shutdown_timeout_ms),
        ];
        let process = ServerProcess::start(env!("CARGO_BIN_EXE_ticketflow"), &data, &env);
        process.wait_for_200("/readyz", STARTUP).await;
        Self { process, data }
    }

    /// `token`'s notification socket on this process, once established.
    async fn notifications(&self, token: &str) -> Socket {
        let path = format!("/ws/notifications/?token={token}");
        let mut socket = connect(&self.process.ws_url(&path)).await;
        let established = next_json(&mut socket).await;
        assert_eq!(established["type"], "connection_established");
        socket
    }

    async fn clean_up(self) {
        self.data.remove_stream().await;
    }
}

/// SIGTERM to a process with a request in flight (a `follow=true` feed,
/// whose headers have come) and a socket open: the feed ends whole, the
/// socket gets 1012, and the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_ends_requests_and_sockets_cleanly_and_exits_0() {
    let mut solo = Solo::start("10000").await;
    let base = solo.process.base.clone();
    let (token, _) = user(&base, "alice").await;
    let project = json!({ "key": "TERM", "name": "Term" });
    let (_, project) = post(&base, "/api/projects", &token, project, None).await;
    let feed = reqwest::Client::new()
        .get(format!(
            "{base}/api/projects/{}/events?follow=true",
            project["id"].as_str().unwrap()
        ))
        .bearer_auth(&token)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .expect("the feed's headers");
    let mut socket = solo.notifications(&token).await;

    solo.process.terminate();
    assert_eq!(close_code(&mut socket).await, 1012);
    let lines = tokio::time::timeout(DRAINED_WITHIN, feed.text()).await;
    let lines = lines.expect("the feed ended").expect("a whole body");
    assert!(lines.contains("ProjectCreated"), "{lines}");
    let status = solo.process.exit_within(DRAINED_WITHIN).await;
    assert!(
        status.success(),
        "{status}; the log:\n{}",
        solo.process.log()
    );
    solo.clean_up().await;
}

/// A drain that outlasts `SHUTDOWN_TIMEOUT_MS` (here a socket whose client
/// never answers the server's Close) is cut short: exit 1, saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drain_past_its_time_limit_is_cut_short_and_exits_1() {
    let mut solo = Solo::start("300").await;
    let (token, _) = user(&solo.process.base, "alice").await;
    let socket = solo.notifications(&token).await;

    solo.process.terminate();
    // Not read from again: the server's Close is never answered.
    let status = solo.process.exit_within(DRAINED_WITHIN).await;
    let log = solo.process.log();
    assert_eq!(status.code(), Some(1), "{status}; the log:\n{log}");
    assert!(
        log.contains("did not finish within 300ms (open sockets left: 1)"),
        "{log}"
    );
    drop(socket);
    solo.clean_up().await;
}

// ---- Two processes, one stopped under load ------------------------------

/// The stopped instance's `SHUTDOWN_TIMEOUT_MS`.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a debug build takes to start (migrations, a loaded machine).
const STARTUP: Duration = Duration::from_secs(60);
/// Writers sending commands all along.
const WRITERS: usize = 4;
/// Sockets per instance: ticket channels, and the assignee's notifications.
const TICKET_SOCKETS: usize = 10;
const NOTIFICATION_SOCKETS: usize = 6;
/// Commands acknowledged before the SIGTERM, and again after the exit.
const COMMANDS_EACH_SIDE: usize = 60;
/// How long one command may keep being retried.
const COMMAND_WITHIN: Duration = Duration::from_secs(60);

/// A command acknowledged with a 2xx.
struct Acked {
    key: String,
    position: i64,
    attempts: usize,
    /// Sent to the stopped instance before its SIGTERM, answered after.
    in_flight_at_signal: bool,
}

/// What one socket saw, across its connections.
#[derive(Debug, Default)]
struct Seen {
    /// Where it started: the head of its first `connection_established`.
    first_head: i64,
    seqs: Vec<i64>,
    /// Close codes (and reasons) the server sent it.
    closes: Vec<(u16, String)>,
    /// Whether a resumed connection replayed (`replay_complete`).
    replayed: bool,
}

/// The two instances' base URLs: instance 0 is the one stopped.
#[derive(Clone)]
struct Pair {
    urls: [String; 2],
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_loses_nothing_and_moves_every_socket() {
    if embedded_mode() {
        eprintln!("embedded mode: one instance only; the multi-instance test is skipped");
        return;
    }
    let mut deployment = Deployment::start().await;
    let people = People::on(&deployment.staying.base).await;
    let (heads_tx, heads) = watch::channel(None::<(i64, i64)>);
    let sockets = open_sockets(&deployment.pair, &people, &heads).await;
    let load = Load::new(&deployment.pair, &people);
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(load.clone().write(w)))
        .collect();

    load.wait_for(COMMANDS_EACH_SIDE, "commands before the SIGTERM")
        .await;
    let drained_in = deployment.stop_one(&load).await;
    load.wait_for(
        load.acknowledged() + COMMANDS_EACH_SIDE,
        "commands after the exit",
    )
    .await;
    load.stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.await.expect("a writer");
    }
    let acked = std::mem::take(&mut *load.acked.lock().unwrap());
    each_once_in_the_log(&deployment.staying.base, &people, &acked).await;

    // One ticket-channel message and one notification of bob's per ticket.
    let final_heads = (acked.len() as i64, acked.len() as i64);
    wait_for_heads(&deployment.staying, &people, final_heads).await;
    heads_tx.send_replace(Some(final_heads));
    let (moved, messages) = every_socket_followed(sockets).await;

    let retried = acked.iter().filter(|a| a.attempts > 1).count();
    let finished = acked.iter().filter(|a| a.in_flight_at_signal).count();
    eprintln!(
        "graceful restart: {} commands acknowledged ({finished} in flight on the stopped \
         instance at the SIGTERM and answered by it, {retried} sent again to the other), each \
         in the log once; {moved} sockets moved with 1012 and resumed without a gap; \
         {messages} messages delivered; SIGTERM to exit 0 in {drained_in:?}",
        acked.len()
    );
    deployment.clean_up().await;
}

/// Two `ticketflow serve` processes with every role on one database and
/// NATS prefix.
struct Deployment {
    /// Started first, it leads the relay and the projections; the one sent SIGTERM.
    stopped: ServerProcess,
    staying: ServerProcess,
    pair: Pair,
    data: ProcessData,
}

impl Deployment {
    async fn start() -> Self {
        let data = ProcessData::new().await;
        let timeout_ms = SHUTDOWN_TIMEOUT.as_millis().to_string();
        let env = [
            ("DATABASE_POOL_SIZE", "6"),
            ("SHUTDOWN_TIMEOUT_MS", timeout_ms.as_str()),
            ("RUST_LOG", "info"),
        ];
        let bin = env!("CARGO_BIN_EXE_ticketflow");
        let stopped = ServerProcess::start(bin, &data, &env);
        stopped.wait_for_200("/readyz", STARTUP).await;
        let staying = ServerProcess::start(bin, &data, &env);
        staying.wait_for_200("/readyz", STARTUP).await;
        let pair = Pair {
            urls: [stopped.base.clone(), staying.base.clone()],
        };
        Self {
            stopped,
            staying,
            pair,
            data,
        }
    }

    /// Sends instance 0 SIGTERM; asserts it drained and exited 0 within its
    /// shutdown timeout, and returns how long that took.
    async fn stop_one(&mut self, load: &Load) -> Duration {
        let signalled = Instant::now();
        load.signal_sent.store(true, Ordering::SeqCst);
        self.stopped.terminate();
        let status = self
            .stopped
            .exit_within(SHUTDOWN_TIMEOUT + Duration::from_secs(5))
            .await;
        let drained_in = signalled.elapsed();
        let log = self.stopped.log();
        assert!(status.success(), "exit status {status}; the log:\n{log}");
        assert!(
            drained_in <= SHUTDOWN_TIMEOUT,
            "drained in {drained_in:?}, over {SHUTDOWN_TIMEOUT:?}; the log:\n{log}"
        );
        assert!(log.contains("drained"), "the log:\n{log}");
        drained_in
    }

    /// Deletes the test's stream (the database goes with `TestDb`).
    async fn clean_up(self) {
        drop(self.staying);
        self.data.remove_stream().await;
    }
}

/// alice, her project, and bob, a member every ticket is assigned to.
struct People {
    alice: String,
    bob: String,
    bob_id: String,
    project_id: String,
}

impl People {
    async fn on(base: &str) -> Self {
        let (alice, _) = user(base, "alice").await;
        let (bob, bob_id) = user(base, "bob").await;
        let project = json!({ "key": "GR", "name": "Graceful" });
        let (status, project) = post(base, "/api/projects", &alice, project, None).await;
        assert_eq!(status, StatusCode::CREATED, "{project}");
        let project_id = project["id"].as_str().expect("project id").to_string();
        let members = format!("/api/projects/{project_id}/members");
        let bob_joins = json!({ "username": "bob" });
        let (status, added) = post(base, &members, &alice, bob_joins, None).await;
        assert_eq!(status, StatusCode::CREATED, "{added}");
        Self {
            alice,
            bob,
            bob_id,
            project_id,
        }
    }
}

/// Opens [`TICKET_SOCKETS`] ticket-channel sockets (alice's and bob's) and
/// [`NOTIFICATION_SOCKETS`] of bob's notifications on each instance, each
/// followed by a task until the final `heads`; returns them with their
/// instance.
async fn open_sockets(
    pair: &Pair,
    people: &People,
    heads: &watch::Receiver<Option<(i64, i64)>>,
) -> Vec<(usize, JoinHandle<Seen>)> {
    let People {
        alice,
        bob,
        project_id,
        ..
    } = people;
    let mut sockets = Vec::new();
    for (home, base) in pair.urls.iter().enumerate() {
        let ws = base.replacen("http://", "ws://", 1);
        for i in 0..TICKET_SOCKETS + NOTIFICATION_SOCKETS {
            let (path, kind) = if i < TICKET_SOCKETS {
                let token = if i % 2 == 0 { alice } else { bob };
                let path = format!("/ws/projects/{project_id}/tickets/?token={token}");
                (path, Kind::Tickets)
            } else {
                (
                    format!("/ws/notifications/?token={bob}"),
                    Kind::Notifications,
                )
            };
            let mut socket = connect(&format!("{ws}{path}")).await;
            let established = next_json(&mut socket).await;
            assert_eq!(established["type"], "connection_established");
            let seen = Seen {
                first_head: established["seq"].as_i64().expect("head"),
                ..Seen::default()
            };
            let follow = Follow {
                pair: pair.clone(),
                home,
                path,
                kind,
                heads: heads.clone(),
            };
            sockets.push((home, tokio::spawn(follow.run(socket, seen))));
        }
    }
    sockets
}

/// Every acknowledged command is in the log exactly once, and nothing else.
async fn each_once_in_the_log(base: &str, people: &People, acked: &[Acked]) {
    let newest = acked.iter().map(|a| a.position).max().unwrap_or(0);
    let created = created_titles(base, people, newest).await;
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for title in &created {
        *counts.entry(title.as_str()).or_default() += 1;
    }
    for command in acked {
        let times = counts.get(command.key.as_str());
        assert_eq!(times, Some(&1), "command {}", command.key);
    }
    let (events, commands) = (created.len(), acked.len());
    assert_eq!(events, commands, "events without an acknowledged command");
}

/// Every socket of instance 0 was closed once, with 1012 and a reason, and
/// resumed with `since`; none of instance 1 was closed (each saw every seq
/// once, in order: [`Follow`]). Returns the sockets moved and the messages
/// delivered.
async fn every_socket_followed(sockets: Vec<(usize, JoinHandle<Seen>)>) -> (usize, usize) {
    let (mut moved, mut messages) = (0, 0);
    for (home, socket) in sockets {
        let seen = socket.await.expect("a socket");
        messages += seen.seqs.len();
        if home == 0 {
            assert_eq!(seen.closes.len(), 1, "{seen:?}");
            let (code, reason) = &seen.closes[0];
            assert_eq!(*code, 1012, "{seen:?}");
            assert!(!reason.is_empty(), "a 1012 says why");
            assert!(seen.replayed, "resumed with since: {seen:?}");
            moved += 1;
        } else {
            assert!(seen.closes.is_empty(), "{seen:?}");
        }
    }
    (moved, messages)
}

/// Registers and logs in `username`; returns its token and id.
async fn user(base: &str, username: &str) -> (String, String) {
    let body = json!({ "username": username, "password": "password123" });
    let (status, registered) = post(base, "/api/auth/register", "", body.clone(), None).await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    let (status, login) = post(base, "/api/auth/login", "", body, None).await;
    assert_eq!(status, StatusCode::OK, "{login}");
    let token = login["access_token"].as_str().expect("token").to_string();
    (token, registered["id"].as_str().expect("id").to_string())
}

async fn post(
    base: &str,
    path: &str,
    token: &str,
    body: Value,
    key: Option<&str>,
) -> (StatusCode, Value) {
    let reply = try_post(base, path, token, body, key)
        .await
        .expect("a request");
    (reply.0, reply.1)
}

/// POSTs; the status, body and `X-Position`, or the connection's error.
async fn try_post(
    base: &str,
    path: &str,
    token: &str,
    body: Value,
    key: Option<&str>,
) -> Result<(StatusCode, Value, Option<i64>), reqwest::Error> {
    let mut request = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body);
    if !token.is_empty() {
        request = request.bearer_auth(token);
    }
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().await?;
    let status = response.status();
    let position = response
        .headers()
        .get("x-position")
        .and_then(|p| p.to_str().ok()?.parse().ok());
    let body = response.json().await.unwrap_or(Value::Null);
    Ok((status, body, position))
}

/// The writers' shared state.
#[derive(Clone)]
struct Load {
    pair: Pair,
    token: String,
    /// Where tickets are created.
    path: String,
    /// Who every ticket is assigned to.
    assignee: String,
    acked: Arc<Mutex<Vec<Acked>>>,
    /// Tells the writers to stop.
    stop: Arc<AtomicBool>,
    /// Set as instance 0 is sent SIGTERM.
    signal_sent: Arc<AtomicBool>,
}

impl Load {
    /// Tickets assigned to bob (a ticket-channel message and a notification
    /// each), sent by alice to the instances in turn.
    fn new(pair: &Pair, people: &People) -> Self {
        Self {
            pair: pair.clone(),
            token: people.alice.clone(),
            path: format!("/api/projects/{}/tickets", people.project_id),
            assignee: people.bob_id.clone(),
            acked: Default::default(),
            stop: Default::default(),
            signal_sent: Default::default(),
        }
    }

    /// Writer `w`: one command after another until told to stop.
    async fn write(self, w: usize) {
        let mut n = 0;
        while !self.stop.load(Ordering::SeqCst) {
            let key = format!("w{w}-{n}");
            let body = json!({ "title": key, "assignee_id": self.assignee });
            let command = self.send_until_acked((w + n) % 2, body, &key).await;
            self.acked.lock().unwrap().push(command);
            n += 1;
        }
    }

    /// Sends a keyed command to instance `first`, and again (same key) to
    /// the other after a connection error, a 503 or
    /// `idempotency_in_progress`, until it is acknowledged.
    async fn send_until_acked(&self, first: usize, body: Value, key: &str) -> Acked {
        let deadline = Instant::now() + COMMAND_WITHIN;
        let mut target = first;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let sent_after_signal = self.signal_sent.load(Ordering::SeqCst);
            let base = &self.pair.urls[target];
            let answer = try_post(base, &self.path, &self.token, body.clone(), Some(key)).await;
            match answer {
                Ok((status, _, Some(position))) if status.is_success() => {
                    let answered_after_signal = self.signal_sent.load(Ordering::SeqCst);
                    return Acked {
                        key: key.to_string(),
                        position,
                        attempts,
                        in_flight_at_signal: target == 0
                            && !sent_after_signal
                            && answered_after_signal,
                    };
                }
                Ok((status, reply, _)) => {
                    let again = status == StatusCode::SERVICE_UNAVAILABLE
                        || reply["error"]["code"] == "idempotency_in_progress";
                    assert!(again, "command {key}: {status} {reply}");
                }
                Err(_) => {} // The instance is going or gone.
            }
            assert!(
                Instant::now() < deadline,
                "command {key} never acknowledged"
            );
            target = 1 - target;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn acknowledged(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    async fn wait_for(&self, acknowledged: usize, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.acknowledged() < acknowledged {
            let only = self.acknowledged();
            assert!(Instant::now() < deadline, "{what}: only {only}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The titles of the project's `TicketCreated` events, from the events feed
/// once the log has reached `position`.
async fn created_titles(base: &str, people: &People, position: i64) -> Vec<String> {
    let (token, project_id) = (&people.alice, &people.project_id);
    let client = reqwest::Client::new();
    let mut titles = Vec::new();
    let mut after = 0;
    loop {
        let page: Value = client
            .get(format!(
                "{base}/api/projects/{project_id}/events?limit=200&after={after}"
            ))
            .bearer_auth(token)
            .header("x-min-position", position)
            .send()
            .await
            .expect("the feed")
            .json()
            .await
            .expect("a page");
        let items = page["items"].as_array().expect("items");
        for item in items.iter().filter(|i| i["type"] == "TicketCreated") {
            titles.push(item["data"]["title"].as_str().expect("a title").to_string());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => after = cursor.parse().expect("a position"),
            None => return titles,
        }
    }
}

/// Waits until a new socket on `server` is told `heads` (the ticket
/// channel's, bob's notifications'): the read models have applied every
/// command, and nothing more.
async fn wait_for_heads(server: &ServerProcess, people: &People, heads: (i64, i64)) {
    let (bob, project_id) = (&people.bob, &people.project_id);
    let head = |path: String| async move {
        let mut socket = connect(&server.ws_url(&path)).await;
        let established = next_json(&mut socket).await;
        established["seq"].as_i64().expect("a head")
    };
    let tickets = format!("/ws/projects/{project_id}/tickets/?token={bob}");
    let notifications = format!("/ws/notifications/?token={bob}");
    let deadline = Instant::now() + WAIT;
    loop {
        let now = (
            head(tickets.clone()).await,
            head(notifications.clone()).await,
        );
        if now == heads {
            return;
        }
        assert!(
            now.0 <= heads.0 && now.1 <= heads.1,
            "heads {now:?} past {heads:?}"
        );
        assert!(Instant::now() < deadline, "heads {now:?}, not {heads:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Tickets,
    Notifications,
}

/// One socket's client: reads its channel, checks each seq follows the
/// last, and on a close with 1012 resumes on the other instance with `since`.
struct Follow {
    pair: Pair,
    home: usize,
    /// The path and query of the socket, without `since`.
    path: String,
    kind: Kind,
    /// The channels' final heads (tickets, notifications), once known.
    heads: watch::Receiver<Option<(i64, i64)>>,
}

impl Follow {
    async fn run(mut self, mut socket: Socket, mut seen: Seen) -> Seen {
        let mut last = seen.first_head;
        loop {
            if let Some(heads) = *self.heads.borrow() {
                let head = match self.kind {
                    Kind::Tickets => heads.0,
                    Kind::Notifications => heads.1,
                };
                if last >= head {
                    return seen;
                }
            }
            let frame = tokio::select! {
                frame = socket.next() => frame,
                _ = self.heads.changed() => continue,
                () = tokio::time::sleep(WAIT) => panic!("nothing for {WAIT:?}: {seen:?}"),
            };
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let message: Value = serde_json::from_str(text.as_str()).expect("json");
                    match message["type"].as_str() {
                        Some("replay_complete") => seen.replayed = true,
                        Some("connection_established") | Some("pong") => {}
                        Some("ticket_update" | "comment_added" | "notification_message") => {
                            let seq = message["seq"].as_i64().expect("seq");
                            assert_eq!(seq, last + 1, "a gap or a duplicate: {seen:?}");
                            seen.seqs.push(seq);
                            last = seq;
                        }
                        _ => panic!("unexpected {message}"),
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    seen.closes.push((code, reason));
                    assert_eq!(code, 1012, "closed: {seen:?}");
                    finish_closing(&mut socket).await;
                    socket = self.resume(last).await;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("socket error: {e} ({seen:?})"),
                None => panic!("the socket ended without a close frame: {seen:?}"),
            }
        }
    }

    /// Reconnects to the other instance with `since`.
    async fn resume(&mut self, since: i64) -> Socket {
        self.home = 1 - self.home;
        let ws = self.pair.urls[self.home].replacen("http://", "ws://", 1);
        connect(&format!("{ws}{}&since={since}", self.path)).await
    }
}

/// Completes the closing handshake the server began (our Close goes back
/// as the socket is read to its end).
async fn finish_closing(socket: &mut Socket) {
    let rest = async { while socket.next().await.is_some() {} };
    let _ = tokio::time::timeout(Duration::from_secs(5), rest).await;
}
