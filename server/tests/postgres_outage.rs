//! PostgreSQL going away under a running server: commands answer 503
//! `dependency_unavailable` within a bounded time while it is down, and work
//! again by themselves once it is back (commands, the read models fed by the
//! relay and projections). On a cluster of the test's own, stopped and
//! started again, then paused (a hung server, whose connections stay open)
//! and resumed, during the test; PostgreSQL mode only.
//!
//! Run: `cargo test -p ticketflow --test postgres_outage`.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use ticketflow_testkit::{
    assert_error, embedded_mode, setup_on, Config, PrivatePostgres, Setup, TestDb, TestServer,
};

/// How long a command may take to be refused while the database is down:
/// the store's wait (5 s) and some slack for a loaded machine.
const REFUSED_WITHIN: Duration = Duration::from_secs(8);
/// How long the server may take to work again once the database is back.
const RECOVERED_WITHIN: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commands_fail_fast_while_postgres_is_down_and_recover_by_themselves() {
    if embedded_mode() {
        eprintln!("embedded mode has no PostgreSQL to lose: skipped");
        return;
    }
    let Some(postgres) = PrivatePostgres::start() else {
        return;
    };
    let db = TestDb::create_on(postgres.url("postgres")).await;
    let s = setup_on(TestServer::start_on(db, Config::default()).await).await;
    let before = s.ticket("before").await;

    postgres.stop();
    refused_while_down(&s, "stopped").await;
    postgres.start_again();
    let restarted = recovered(&s, "after the restart").await;

    postgres.pause();
    refused_while_down(&s, "paused").await;
    postgres.resume();
    let resumed = recovered(&s, "after the pause").await;

    // The read side recovered too: exactly the tickets answered 201 are
    // listed (none refused while down was applied).
    let listed = s
        .server
        .list_all(&s.tickets_path(), &s.alice.token, 50)
        .await;
    let ids: Vec<_> = listed.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [before, restarted, resumed]);
}

/// Commands are refused with a 503 within [`REFUSED_WITHIN`].
async fn refused_while_down(s: &Setup, how: &str) {
    for attempt in 0..3 {
        let started = Instant::now();
        let body = json!({ "title": format!("while {how} {attempt}") });
        let reply = tokio::time::timeout(REFUSED_WITHIN, s.try_ticket(body))
            .await
            .unwrap_or_else(|_| panic!("no answer within {REFUSED_WITHIN:?} while {how}"));
        assert_error(&reply, 503, "dependency_unavailable", None);
        assert!(started.elapsed() <= REFUSED_WITHIN);
    }
}

/// Creates a ticket once the server answers again; returns its id.
async fn recovered(s: &Setup, title: &str) -> String {
    let deadline = Instant::now() + RECOVERED_WITHIN;
    loop {
        let reply = s.try_ticket(json!({ "title": title })).await;
        if reply.status == StatusCode::CREATED {
            return reply.body["id"].as_str().expect("id").to_string();
        }
        assert_error(&reply, 503, "dependency_unavailable", None);
        assert!(
            Instant::now() < deadline,
            "still refused {RECOVERED_WITHIN:?} after PostgreSQL came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
