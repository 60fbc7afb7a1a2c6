//! `GET /metrics`: the figures move as the server works, in both modes; the
//! catalogue, the exports, the Grafana dashboard and the operations guide
//! name the same metrics; `METRICS_ADDR` and `METRICS_ENABLED` on the binary.
//!
//! The recorder is the process's (the `metrics` facade has one global
//! recorder, as a deployed process runs one server), and the test kit's
//! servers run inside the test process. So the tests that start a server
//! take turns ([`one_at_a_time`]), each on a runtime of its own that is shut
//! down, ending every socket and task of its server, before the next one
//! begins; and each compares scrapes taken before and after what it does.
//! A recorder per server would need a handle threaded through every layer
//! that records (the store's committer, the relay, the hub), for the tests'
//! sake only. What only the binary does (installing the recorder before
//! anything records, the separate listener, turning it off) is tested on the
//! binary itself.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use ticketflow::metrics::catalogue::{Applies, Kind, CATALOGUE};
use ticketflow_nats::Channel;
use ticketflow_testkit::scrape::Scrape;
use ticketflow_testkit::ws::{self, connect, next_json, next_json_within};
use ticketflow_testkit::{embedded_mode, setup, Setup, TestServer};

const COMMANDS: &str = "ticketflow_commands_total";
const REQUESTS: &str = "ticketflow_http_requests_total";
const SOCKETS_OPEN: &str = "ticketflow_ws_sockets_open";
const DELIVERIES: &str = "ticketflow_ws_deliveries_total";

static TURN: Mutex<()> = Mutex::new(());

/// Runs `test` alone among the tests of this file that start servers, on a
/// runtime dropped (every task of its servers ended) before the next starts.
fn one_at_a_time(test: impl Future<Output = ()>) {
    let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(test);
}

/// Scrapes until `done` holds of a scrape, for up to 20 s; returns it.
async fn eventually(server: &TestServer, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = tokio::time::Instant::now() + ws::WAIT;
    loop {
        let scrape = server.scrape().await;
        if done(&scrape) {
            return scrape;
        }
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How much a series moved between two scrapes.
fn moved(before: &Scrape, after: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    after.sum(name, labels) - before.sum(name, labels)
}

#[test]
fn commands_requests_appends_and_lag_are_counted() {
    one_at_a_time(async {
        let Setup {
            server,
            alice,
            project_id,
        } = setup().await;
        let before = server.scrape().await;

        let created = server
            .ticket(&alice, &project_id, json!({ "title": "counted" }))
            .await;
        let ticket = created.body["id"].as_str().expect("id");
        let stale = server
            .call(
                Method::PATCH,
                &format!("/api/tickets/{ticket}"),
                Some(&alice.token),
                Some(json!({ "priority": "high" })),
                &[("if-match", "\"7\"")],
            )
            .await;
        assert_eq!(stale.status, StatusCode::CONFLICT);
        // The domain refuses it: an assignee who is not a member.
        let stranger = uuid::Uuid::new_v4().to_string();
        let invalid = server
            .post(
                &format!("/api/projects/{project_id}/tickets"),
                &alice.token,
                json!({ "title": "refused", "assignee_id": stranger }),
            )
            .await;
        assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
        let stray = format!("/api/no-such-route-{}", uuid::Uuid::new_v4().simple());
        server.get(&stray, &alice.token).await;
        let after = server.scrape().await;

        let commands = |kind, outcome| {
            let labels = [("type", kind), ("outcome", outcome)];
            moved(&before, &after, COMMANDS, &labels)
        };
        assert_eq!(commands("create_ticket", "ok"), 1.0);
        assert_eq!(commands("update_ticket", "conflict"), 1.0);
        assert_eq!(commands("create_ticket", "invalid"), 1.0);

        let requests = |route, method, status| {
            let labels = [("route", route), ("method", method), ("status", status)];
            moved(&before, &after, REQUESTS, &labels)
        };
        let tickets = "/api/projects/{pid}/tickets";
        assert_eq!(requests(tickets, "POST", "201"), 1.0);
        assert_eq!(requests(tickets, "POST", "422"), 1.0);
        assert_eq!(requests("/api/tickets/{id}", "PATCH", "409"), 1.0);
        assert_eq!(requests("unmatched", "GET", "404"), 1.0);
        let timed = [("route", tickets), ("method", "POST")];
        let seconds = "ticketflow_http_request_duration_seconds_count";
        assert_eq!(moved(&before, &after, seconds, &timed), 2.0);
        let raw_path = after
            .samples
            .iter()
            .any(|s| s.labels.values().any(|v| v.contains("no-such-route")));
        assert!(!raw_path, "a raw path became a label");

        let appended = [("stream", "ticket"), ("outcome", "ok")];
        assert_eq!(
            moved(&before, &after, "ticketflow_appends_total", &appended),
            1.0
        );
        let append_seconds = "ticketflow_append_duration_seconds_count";
        assert_eq!(
            moved(&before, &after, append_seconds, &[("stream", "ticket")]),
            1.0
        );
        let commits = "ticketflow_group_commit_writes_count";
        assert!(moved(&before, &after, commits, &[]) >= 1.0);

        // The relay and every projection reach the command's position.
        let position = created.position() as f64;
        let caught_up = eventually(&server, "the relay and projections catch up", |s| {
            let projections = ticketflow_projections::names();
            s.sum("ticketflow_log_head_position", &[]) >= position
                && s.sum("ticketflow_relay_position", &[]) >= position
                && s.sum("ticketflow_relay_lag_events", &[]) == 0.0
                && projections.iter().all(|p| {
                    let p = [("projection", *p)];
                    s.sum("ticketflow_projection_checkpoint_position", &p) >= position
                        && s.sum("ticketflow_projection_lag_events", &p) == 0.0
                })
        })
        .await;
        let published = "ticketflow_relay_published_events_total";
        assert!(moved(&before, &caught_up, published, &[]) >= 1.0);
        connection_state(&caught_up);
    });
}

/// What the mode's connections say: PostgreSQL and NATS up, this process
/// leading the relay and the projections, the pool's figures; embedded,
/// none of them.
fn connection_state(scrape: &Scrape) {
    let mode = scrape
        .matching("ticketflow_build_info", &[])
        .next()
        .map(|s| s.labels["mode"].clone());
    if embedded_mode() {
        assert_eq!(mode.as_deref(), Some("embedded"));
        assert!(scrape.matching("ticketflow_postgres_up", &[]).count() == 0);
        return;
    }
    assert_eq!(mode.as_deref(), Some("postgres+nats"));
    assert_eq!(scrape.sum("ticketflow_postgres_up", &[]), 1.0);
    assert_eq!(scrape.sum("ticketflow_nats_up", &[]), 1.0);
    for role in ["relay", "projections"] {
        assert_eq!(scrape.sum("ticketflow_leader", &[("role", role)]), 1.0);
    }
    // The test kit's pool (see `TestServer::start_on`).
    let max = "ticketflow_postgres_pool_max_connections";
    assert_eq!(scrape.sum(max, &[]), 20.0);
    assert!(scrape.sum("ticketflow_postgres_pool_connections", &[]) >= 1.0);
}

#[test]
fn sockets_deliveries_replays_and_resyncs_are_counted() {
    one_at_a_time(async {
        let s = setup().await;
        let (server, alice, pid) = (&s.server, &s.alice, &s.project_id);
        let bob = s.member("bob").await;
        let before = server.scrape().await;

        let tickets_url = server.ws_url(&format!(
            "/ws/projects/{pid}/tickets/?token={}",
            alice.token
        ));
        let mut tickets = connect(&tickets_url).await;
        next_json(&mut tickets).await;
        let notifications_url = server.ws_url(&format!("/ws/notifications/?token={}", alice.token));
        let mut notifications = connect(&notifications_url).await;
        next_json(&mut notifications).await;
        let presence_url =
            |token: &str| server.ws_url(&format!("/ws/projects/{pid}/presence/?token={token}"));
        let mut presence = connect(&presence_url(&alice.token)).await;
        assert_eq!(
            next_json(&mut presence).await["type"],
            "connection_established"
        );
        assert_eq!(next_json(&mut presence).await["type"], "presence_state");
        // A socket counts as open before it is sent anything.
        let open = server.scrape().await;
        for channel in ["tickets", "notifications", "presence"] {
            let channel = [("channel", channel)];
            assert_eq!(moved(&before, &open, SOCKETS_OPEN, &channel), 1.0);
            let opened = "ticketflow_ws_connections_total";
            assert_eq!(moved(&before, &open, opened, &channel), 1.0);
        }
        assert_eq!(moved(&before, &open, "ticketflow_presence_users", &[]), 1.0);

        // Deliveries: a change on the ticket channel, bob's arrival on
        // alice's presence socket.
        server
            .ticket(alice, pid, json!({ "title": "delivered" }))
            .await;
        assert_eq!(next_json(&mut tickets).await["seq"], 1);
        let mut bobs = connect(&presence_url(&bob.token)).await;
        assert_eq!(next_json(&mut presence).await["action"], "joined");
        eventually(server, "the deliveries are counted", |after| {
            let on = |channel| moved(&before, after, DELIVERIES, &[("channel", channel)]);
            on("tickets") >= 1.0
                && on("presence") >= 1.0
                && moved(&before, after, "ticketflow_presence_users", &[]) == 2.0
        })
        .await;

        // A replay of the one message, and a resync for a seq ahead.
        let mut replaying = connect(&format!("{tickets_url}&since=0")).await;
        next_json(&mut replaying).await;
        assert_eq!(next_json(&mut replaying).await["seq"], 1);
        assert_eq!(next_json(&mut replaying).await["type"], "replay_complete");
        let mut ahead = connect(&format!("{tickets_url}&since=99")).await;
        next_json(&mut ahead).await;
        assert_eq!(next_json(&mut ahead).await["type"], "resync_required");
        let tickets_channel = [("channel", "tickets")];
        eventually(server, "the replay and the resync are counted", |after| {
            let moved = |name| moved(&before, after, name, &tickets_channel);
            moved("ticketflow_ws_replays_total") == 1.0
                && moved("ticketflow_ws_replay_messages_count") == 1.0
                && moved("ticketflow_ws_replay_messages_sum") == 1.0
                && moved("ticketflow_ws_resyncs_total") == 1.0
        })
        .await;

        for socket in [
            &mut tickets,
            &mut notifications,
            &mut presence,
            &mut bobs,
            &mut replaying,
            &mut ahead,
        ] {
            socket.close(None).await.expect("close");
        }
        eventually(server, "closed sockets leave the gauges", |after| {
            ["tickets", "notifications", "presence"]
                .iter()
                .all(|c| moved(&before, after, SOCKETS_OPEN, &[("channel", c)]) == 0.0)
                && moved(&before, after, "ticketflow_presence_users", &[]) == 0.0
        })
        .await;
    });
}

/// Losses that did not happen: a message stored but never published (the
/// head check catches its channel up), and a live message after one this
/// process never received (the socket fills the gap from the store).
#[test]
fn head_check_catch_ups_and_gap_fills_are_counted() {
    one_at_a_time(async {
        let s = setup().await;
        let (server, pid) = (&s.server, &s.project_id);
        let url = server.ws_url(&format!(
            "/ws/projects/{pid}/tickets/?token={}",
            s.alice.token
        ));
        let mut socket = connect(&url).await;
        let head = next_json(&mut socket).await["seq"].as_i64().expect("seq");
        let before = server.scrape().await;
        let message = |seq: i64| json!({ "type": "ticket_updated", "seq": seq, "project_id": pid });

        server
            .store_unpublished_ticket_message(pid, head + 1, &message(head + 1))
            .await;
        let caught_up = next_json_within(&mut socket, Duration::from_secs(5)).await;
        assert_eq!(caught_up, message(head + 1));
        let channel = [("channel", "tickets")];
        let catch_ups = "ticketflow_ws_head_check_catch_ups_total";
        eventually(server, "the head check's catch-up is counted", |after| {
            moved(&before, after, catch_ups, &channel) == 1.0
        })
        .await;

        // head + 2 stored but never published; head + 3 published.
        for seq in [head + 2, head + 3] {
            server
                .store_unpublished_ticket_message(pid, seq, &message(seq))
                .await;
        }
        let broker = server.backend.broker.as_ref().expect("a broker");
        let project_id = uuid::Uuid::parse_str(pid).expect("project id");
        let key = Channel::Tickets { project_id };
        broker
            .publish_channel(&key, head + 3, message(head + 3).to_string())
            .await
            .expect("publish");
        assert_eq!(next_json(&mut socket).await, message(head + 2));
        assert_eq!(next_json(&mut socket).await, message(head + 3));
        let after = server.scrape().await;
        let gap_fills = "ticketflow_ws_gap_fills_total";
        assert_eq!(moved(&before, &after, gap_fills, &channel), 1.0);
    });
}

/// Every metric of the catalogue is exported (once the server has done a
/// little of everything) and no other: the names the dashboard and the
/// guide are checked against are the ones a scrape has.
#[test]
fn the_exports_are_the_catalogue() {
    one_at_a_time(async {
        let s = setup().await;
        s.server
            .ticket(&s.alice, &s.project_id, json!({ "title": "one of each" }))
            .await;
        let expected: std::collections::BTreeSet<String> = CATALOGUE
            .iter()
            .filter(|m| m.applies == Applies::Always || !embedded_mode())
            .map(|m| m.name.to_string())
            .collect();
        let scrape = eventually(&s.server, "every metric is exported", |scrape| {
            scrape.family_names("ticketflow_").is_superset(&expected)
        })
        .await;
        assert_eq!(scrape.family_names("ticketflow_"), expected);
        for m in CATALOGUE.iter().filter(|m| expected.contains(m.name)) {
            let kind = match m.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
                Kind::Histogram => "histogram",
            };
            assert_eq!(scrape.families[m.name], kind, "{}", m.name);
        }
    });
}

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs")
}

/// The metric names a PromQL expression uses, a histogram's series
/// (`_bucket`, `_sum`, `_count`) by their family's name.
fn metrics_in(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("ticketflow_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(family(&tail[..end]).to_string());
        rest = &tail[end..];
    }
    names
}

fn family(series: &str) -> &str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = series.strip_suffix(suffix) {
            if CATALOGUE
                .iter()
                .any(|m| m.name == base && m.kind == Kind::Histogram)
            {
                return base;
            }
        }
    }
    series
}

/// Every `expr` of a panel's targets, wherever it is nested.
fn exprs(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(expr)) = map.get("expr") {
                found.push(expr.clone());
            }
            map.values().for_each(|v| exprs(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| exprs(v, found)),
        _ => {}
    }
}

#[test]
fn the_dashboard_queries_only_exported_metrics() {
    let path = docs().join("grafana/ticketflow.json");
    let text = std::fs::read_to_string(&path).expect("the dashboard");
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("variables");
    assert!(
        variables
            .iter()
            .any(|v| v["type"] == "datasource" && v["query"] == "prometheus"),
        "the Prometheus datasource is a variable"
    );
    let mut found = Vec::new();
    exprs(&dashboard["panels"], &mut found);
    assert!(found.len() >= 12, "panels with queries: {}", found.len());
    let known: Vec<&str> = CATALOGUE.iter().map(|m| m.name).collect();
    for expr in &found {
        let names = metrics_in(expr);
        assert!(!names.is_empty(), "a query of no ticketflow metric: {expr}");
        for name in names {
            assert!(
                known.contains(&name.as_str()),
                "{name} (in `{expr}`) is not exported"
            );
        }
    }
}

#[test]
fn the_operations_guide_explains_every_metric() {
    let guide = std::fs::read_to_string(docs().join("operations.md")).expect("the guide");
    for m in CATALOGUE {
        assert!(guide.contains(m.name), "docs/operations.md: {}", m.name);
    }
}

/// The binary, embedded, with `env` added; killed when dropped.
struct Binary {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Binary {
    fn start(port: u16, env: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().expect("a data directory");
        let mut command = Command::new(env!("CARGO_BIN_EXE_ticketflow"));
        command
            .arg("serve")
            .env_remove("DATABASE_URL")
            .env_remove("NATS_URL")
            .env("TICKETFLOW_DATA_DIR", dir.path())
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().expect("spawn ticketflow");
        Self { child, _dir: dir }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// The status and body of `GET url` once something listens there.
async fn get_when_up(url: &str) -> (StatusCode, String) {
    let deadline = tokio::time::Instant::now() + ws::WAIT;
    loop {
        if let Ok(response) = reqwest::get(url).await {
            let status = response.status();
            return (status, response.text().await.expect("a body"));
        }
        assert!(tokio::time::Instant::now() < deadline, "nothing at {url}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_binary_serves_metrics_on_the_main_port_by_default() {
    let port = free_port();
    let _server = Binary::start(port, &[]);
    let url = format!("http://127.0.0.1:{port}/metrics");
    let deadline = tokio::time::Instant::now() + ws::WAIT;
    // The gateway starts a moment after the listener: its series come then.
    let scrape = loop {
        let (status, body) = get_when_up(&url).await;
        assert_eq!(status, StatusCode::OK);
        let scrape = Scrape::parse(&body);
        let open = scrape.matching(SOCKETS_OPEN, &[("channel", "tickets")]);
        if open.count() == 1 {
            break scrape;
        }
        assert!(tokio::time::Instant::now() < deadline, "no gateway series");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mode = scrape.matching("ticketflow_build_info", &[]).next();
    assert_eq!(mode.map(|s| s.labels["mode"].as_str()), Some("embedded"));
}

#[tokio::test]
async fn metrics_addr_moves_metrics_to_a_listener_of_their_own() {
    let (port, metrics_port) = (free_port(), free_port());
    let addr = format!("127.0.0.1:{metrics_port}");
    let _server = Binary::start(port, &[("METRICS_ADDR", addr.clone())]);
    let (status, body) = get_when_up(&format!("http://{addr}/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("ticketflow_build_info"), "{body}");
    let (status, _) = get_when_up(&format!("http://127.0.0.1:{port}/metrics")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metrics_enabled_false_turns_them_off() {
    let port = free_port();
    let _server = Binary::start(port, &[("METRICS_ENABLED", "false".into())]);
    let (status, body) = get_when_up(&format!("http://127.0.0.1:{port}/metrics")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let error: Value = serde_json::from_str(&body).expect("the error body");
    assert_eq!(error["error"]["code"], "not_found");
}
