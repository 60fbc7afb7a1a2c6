//! `GET /healthz` and `GET /readyz` in both modes: liveness always, readiness
//! naming each check; 503 naming the failing check while PostgreSQL is down
//! (stopped, then hung) and 200 once it is back; 503 while the workers lag
//! behind `READY_MAX_LAG` and 200 once they caught up; and `ticketflow
//! health`, the container health check, which exits 0 only on a 200.
//!
//! Run: `cargo test -p ticketflow --test health` (and with
//! `TICKETFLOW_TEST_MODE=embedded`).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use ticketflow_testkit::{
    embedded_mode, keys, setup_on, sorted, Config, PrivatePostgres, Reply, TestDb, TestServer,
};

/// How long readiness may take to answer while a dependency is down: its
/// checks' bound (1 s) and slack for a loaded machine.
const ANSWERED_WITHIN: Duration = Duration::from_secs(3);
/// How long the server may take to be ready again.
const READY_AGAIN_WITHIN: Duration = Duration::from_secs(30);

const PROJECTIONS: [&str; 4] = [
    "projection:comments",
    "projection:notifications",
    "projection:ticket_channel",
    "projection:tickets",
];

async fn readyz(server: &TestServer) -> Reply {
    server
        .call(reqwest::Method::GET, "/readyz", None, None, &[])
        .await
}

/// The checks a server running every role makes, in this test's mode.
fn every_check() -> Vec<String> {
    let mut names = Vec::from(PROJECTIONS);
    if embedded_mode() {
        names.extend(["sqlite", "broker"]);
    } else {
        names.extend(["postgres", "nats", "relay_lag"]);
    }
    sorted(&names)
}

/// Asks `/readyz` until it answers `status`, within `within`.
async fn readyz_until(server: &TestServer, status: u16, within: Duration) -> Reply {
    let deadline = Instant::now() + within;
    loop {
        let reply = readyz(server).await;
        if reply.status.as_u16() == status {
            return reply;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz still answers {} {:?} after {within:?}",
            reply.status,
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn healthz_is_ok_and_readyz_names_every_check() {
    let server = TestServer::start().await;
    let alive = server
        .call(reqwest::Method::GET, "/healthz", None, None, &[])
        .await;
    assert_eq!(alive.status, StatusCode::OK);
    assert_eq!(alive.body, json!({ "status": "ok" }));

    // A fresh log: nothing to lag behind.
    let ready = readyz(&server).await;
    assert_eq!(ready.status, StatusCode::OK, "{:?}", ready.body);
    assert_eq!(ready.body["status"], "ready");
    let checks = &ready.body["checks"];
    assert_eq!(keys(checks), every_check());
    for (name, check) in checks.as_object().expect("checks") {
        assert_eq!(check["ok"], true, "{name}: {check}");
    }
    let store = if embedded_mode() {
        "sqlite"
    } else {
        "postgres"
    };
    assert!(checks[store]["latency_ms"].is_u64(), "{checks}");
    for name in PROJECTIONS {
        assert_eq!(checks[name]["lag"], 0, "{name}");
        assert_eq!(checks[name]["threshold"], 10_000, "{name}");
    }
}

/// The web app's page fallback (an `Accept: text/html` GET of any path)
/// does not take the health routes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_web_app_does_not_swallow_the_health_routes() {
    let server = TestServer::start().await;
    for path in ["/healthz", "/readyz"] {
        let html = [("accept", "text/html,application/xhtml+xml")];
        let reply = server
            .call(reqwest::Method::GET, path, None, None, &html)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert!(reply.body["status"].is_string(), "{path}: {:?}", reply.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readyz_names_postgres_while_it_is_down_and_recovers_by_itself() {
    if embedded_mode() {
        eprintln!("embedded mode has no PostgreSQL to lose: skipped");
        return;
    }
    let Some(postgres) = PrivatePostgres::start() else {
        return;
    };
    let db = TestDb::create_on(postgres.url("postgres")).await;
    let server = TestServer::start_on(db, Config::default()).await;
    readyz_until(&server, 200, READY_AGAIN_WITHIN).await;

    postgres.stop();
    not_ready_naming_postgres(&server, "stopped").await;
    postgres.start_again();
    readyz_until(&server, 200, READY_AGAIN_WITHIN).await;

    // Hung: connections stay open and nothing answers; the check's bound
    // answers instead.
    postgres.pause();
    let reply = not_ready_naming_postgres(&server, "paused").await;
    assert_eq!(
        reply.body["checks"]["postgres"]["error"],
        "no answer within 1000 ms"
    );
    postgres.resume();
    let ready = readyz_until(&server, 200, READY_AGAIN_WITHIN).await;
    assert_eq!(ready.body["status"], "ready");
}

/// `/readyz` answers 503 within [`ANSWERED_WITHIN`], naming the postgres
/// check (and the lag checks, which read it) as failed, the others passed.
async fn not_ready_naming_postgres(server: &TestServer, how: &str) -> Reply {
    let started = Instant::now();
    let reply = tokio::time::timeout(ANSWERED_WITHIN, readyz(server))
        .await
        .unwrap_or_else(|_| panic!("/readyz hung while PostgreSQL is {how}"));
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{how}: {:?}",
        reply.body
    );
    assert!(started.elapsed() < ANSWERED_WITHIN);
    let body = &reply.body;
    assert_eq!(body["status"], "not_ready", "{how}: {body}");
    assert_eq!(body["checks"]["postgres"]["ok"], false, "{how}: {body}");
    assert!(body["checks"]["postgres"]["error"].is_string(), "{body}");
    assert_eq!(body["checks"]["nats"]["ok"], true, "{how}: {body}");
    assert_eq!(
        body["checks"]["projection:tickets"]["error"],
        "store unavailable"
    );
    reply
}

/// A server whose workers do not run yet (in a deployment: the instances
/// leading them are down) falls behind the log; with `READY_MAX_LAG=0` one
/// event is too many. Once they run and catch up it is ready again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readyz_fails_while_the_workers_lag_past_the_threshold() {
    let config = Config {
        ready_max_lag: 0,
        workers: false,
        ..Config::default()
    };
    let server = if embedded_mode() {
        TestServer::start_with(config).await
    } else {
        TestServer::start_on(TestDb::create().await, config).await
    };
    readyz_until(&server, 200, READY_AGAIN_WITHIN).await;
    // A project: one event in the log, which nothing follows.
    let s = setup_on(server).await;

    let behind = readyz(&s.server).await;
    assert_eq!(behind.status, StatusCode::SERVICE_UNAVAILABLE);
    let body = &behind.body;
    assert_eq!(body["status"], "not_ready", "{body}");
    let lagging: Vec<&str> = if embedded_mode() {
        Vec::from(PROJECTIONS)
    } else {
        [&PROJECTIONS[..], &["relay_lag"]].concat()
    };
    for name in lagging {
        let check = &body["checks"][name];
        assert_eq!(check["ok"], false, "{name}: {body}");
        assert!(check["lag"].as_i64() >= Some(1), "{name}: {body}");
        assert_eq!(check["threshold"], 0, "{name}: {body}");
    }
    let store = if embedded_mode() {
        "sqlite"
    } else {
        "postgres"
    };
    assert_eq!(body["checks"][store]["ok"], true, "{body}");

    let workers = s.server.backend.spawn_workers(true, true).expect("workers");
    let ready = readyz_until(&s.server, 200, READY_AGAIN_WITHIN).await;
    for name in PROJECTIONS {
        assert_eq!(ready.body["checks"][name]["lag"], 0, "{name}");
    }
    workers.iter().for_each(|w| w.abort());
}

/// `ticketflow health [--ready] [--url]`, as a container runs it.
async fn health_command(args: &[&str], bind_addr: &str) -> (bool, Value) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ticketflow"))
        .arg("health")
        .args(args)
        .env("BIND_ADDR", bind_addr)
        .output()
        .await
        .expect("run ticketflow health");
    let printed = String::from_utf8_lossy(&out.stdout);
    let body = serde_json::from_str(printed.trim()).unwrap_or(Value::Null);
    (out.status.success(), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_health_command_exits_0_only_on_a_200() {
    let server = TestServer::start().await;
    let bind_addr = server.base.trim_start_matches("http://").to_string();
    let (up, body) = health_command(&[], &bind_addr).await;
    assert!(up, "healthz: {body}");
    assert_eq!(body, json!({ "status": "ok" }));
    let (ready, body) = health_command(&["--ready"], &bind_addr).await;
    assert!(ready, "readyz: {body}");
    assert_eq!(body["status"], "ready");

    server.backend.drain().begin();
    let url = format!("{}/readyz", server.base);
    let (ready, body) = health_command(&["--url", &url], "127.0.0.1:1").await;
    assert!(!ready, "a draining server is not ready: {body}");
    assert_eq!(body, json!({ "status": "draining", "checks": {} }));
    let (up, _) = health_command(&[], &bind_addr).await;
    assert!(up, "a draining server is still up");

    // Nobody listening: a failure, not a hang.
    let (up, _) = health_command(&[], "127.0.0.1:1").await;
    assert!(!up);
}
