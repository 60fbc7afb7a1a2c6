//! Board as of a moment: `GET /api/projects/{pid}/tickets?as_of=<position>`
//! on one project with a long history (the 10,000 tickets and
//! 1,000,000 events, seeded by testkit's seeder), at an early, a middle and
//! the head position, with the default page and the largest.
//!
//! The server runs the API role alone: the board comes from the event log,
//! and no projection catching up with the seeded history competes for the
//! CPU. The first query over the unsnapshotted history writes the board
//! snapshots (timed on its own); the timed ones start from them.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::SubsecRound;
use serde::Serialize;
use serde_json::Value;
use ticketflow_domain::{EventMeta, NewMember, Project, ProjectCommand, Role};
use ticketflow_store::pg::PgStore;
use ticketflow_store::{Append, EventStore, Metadata};
use ticketflow_testkit::seed::{self, HistorySpec};
use uuid::Uuid;

use crate::api::{Api, User};
use crate::latency::{Latency, Summary};
use crate::server::{connect, Options, Server, Services};

#[derive(Debug, Clone, Serialize)]
pub struct Spec {
    pub events: u64,
    /// Mean events per seeded burst: with a quarter of bursts creating a
    /// ticket, `events / (4 * this)` tickets.
    pub events_per_append: usize,
    /// Timed requests per position and page size.
    pub requests: usize,
}

#[derive(Debug, Serialize)]
pub struct Outcome {
    pub spec: Spec,
    pub seed_seconds: f64,
    pub tickets: u64,
    pub live_tickets: u64,
    /// Counting the head's tickets page by page; the first page writes
    /// every snapshot.
    pub first_query_ms: f64,
    pub cases: Vec<Case>,
    /// The slowest case's p99.
    pub worst_p99_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct Case {
    /// early, middle or head.
    pub at: &'static str,
    pub position: i64,
    /// The page size asked for (50 is the default).
    pub limit: u32,
    pub latency: Summary,
}

pub async fn run(services: &Services, spec: Spec) -> anyhow::Result<Outcome> {
    let options = Options {
        roles: Some("api"),
        ..Options::default()
    };
    let server = Server::start(services, "board_as_of", options).await?;
    let result = measure(&server, spec).await;
    server.stop().await?;
    result
}

async fn measure(server: &Server, spec: Spec) -> anyhow::Result<Outcome> {
    let url = format!(
        "{}?options=-c%20synchronous_commit%3Doff",
        server.database_url()
    );
    let store = PgStore::connect(&url, 4).context("connecting the seeder")?;
    let history = HistorySpec {
        events: spec.events,
        projects: 1,
        events_per_append: spec.events_per_append,
        ..HistorySpec::default()
    };
    let seeded = seed::history(&store, &history).await?;
    let api = Api::new(&server.base_url)?;
    let user = api.user("bench_board").await?;
    let project_id = join_seeded_project(&store, server, &user).await?;
    let (first, head) = span(server, project_id).await?;

    let client = reqwest::Client::new();
    let board = Board {
        client: &client,
        url: format!("{}/api/projects/{project_id}/tickets", server.base_url),
        token: user.token().to_string(),
    };
    let started = Instant::now();
    let live_tickets = board.count(head).await?;
    let first_query_ms = started.elapsed().as_secs_f64() * 1000.0;

    let mut cases = Vec::new();
    let moments = [
        ("early", first + (head - first) / 10),
        ("middle", first + (head - first) / 2),
        ("head", head),
    ];
    for (at, position) in moments {
        for limit in [50, 200] {
            let mut latency = Latency::default();
            for _ in 0..spec.requests {
                let started = Instant::now();
                board.page(position, limit, None).await?;
                latency.record(started.elapsed());
            }
            let latency = latency.summary();
            cases.push(Case {
                at,
                position,
                limit,
                latency,
            });
        }
    }
    Ok(Outcome {
        seed_seconds: seeded.elapsed.as_secs_f64(),
        tickets: seeded.tickets,
        live_tickets,
        first_query_ms,
        worst_p99_ms: cases.iter().map(|c| c.latency.p99_ms).fold(0.0, f64::max),
        cases,
        spec,
    })
}

/// Makes `user` a member of the seeded project (whose members exist only
/// in its events), as its admin would; returns the project's id.
async fn join_seeded_project(
    store: &PgStore,
    server: &Server,
    user: &User,
) -> anyhow::Result<Uuid> {
    let db = connect(server.database_url()).await?;
    let row = db
        .query_one(
            "SELECT stream_id FROM events WHERE event_type = 'ProjectCreated'",
            &[],
        )
        .await
        .context("finding the seeded project")?;
    let project_id: Uuid = row.get(0);
    let me: Value = reqwest::Client::new()
        .get(format!("{}/api/me", server.base_url))
        .bearer_auth(user.token())
        .send()
        .await?
        .json()
        .await?;
    let user_id = me["id"]
        .as_str()
        .context("/api/me without an id")?
        .parse()?;
    let project = store.load_project(project_id).await?;
    let command = ProjectCommand::AddMember {
        meta: EventMeta {
            actor: admin(&project.state)?,
            occurred_at: chrono::Utc::now().trunc_subsecs(6),
        },
        user: NewMember {
            user_id,
            username: user.username.clone(),
            display_name: user.username.clone(),
        },
    };
    let events = project
        .state
        .decide(command)
        .map_err(|e| anyhow::anyhow!("adding the bench user: {e}"))?;
    store
        .append_project(Append {
            stream_id: project_id,
            project_id,
            before: project,
            events,
            metadata: Metadata::default(),
        })
        .await?;
    Ok(project_id)
}

fn admin(project: &Project) -> anyhow::Result<ticketflow_domain::Actor> {
    project
        .members
        .values()
        .find(|m| m.role == Role::Admin)
        .map(|m| ticketflow_domain::Actor {
            id: m.user_id,
            username: m.username.clone(),
        })
        .context("the seeded project has no admin")
}

/// The project's first position and the log's head.
async fn span(server: &Server, project_id: Uuid) -> anyhow::Result<(i64, i64)> {
    let db = connect(server.database_url()).await?;
    let row = db
        .query_one(
            "SELECT min(position), (SELECT max(position) FROM events) FROM events
             WHERE project_id = $1",
            &[&project_id],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

struct Board<'a> {
    client: &'a reqwest::Client,
    url: String,
    token: String,
}

impl Board<'_> {
    /// One page of the board at `position` (the default page for 50).
    async fn page(&self, position: i64, limit: u32, after: Option<&str>) -> anyhow::Result<Value> {
        let mut url = format!("{}?as_of={position}", self.url);
        if limit != 50 {
            url.push_str(&format!("&limit={limit}"));
        }
        if let Some(after) = after {
            url.push_str(&format!("&after={after}"));
        }
        let response = self
            .client
            .get(&url)
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(600))
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await.context("a board page")?;
        if !status.is_success() {
            bail!("{url}: {status} {body}");
        }
        Ok(body)
    }

    /// The live tickets at `position`, counted through every page.
    async fn count(&self, position: i64) -> anyhow::Result<u64> {
        let mut count = 0;
        let mut page = self.page(position, 200, None).await?;
        loop {
            count += page["items"].as_array().map_or(0, Vec::len) as u64;
            let Some(after) = page["next_cursor"].as_str().map(str::to_string) else {
                return Ok(count);
            };
            page = self.page(position, 200, Some(&after)).await?;
        }
    }
}

impl Outcome {
    /// Each case's latency, after the table of checks.
    pub fn markdown(&self, out: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(
            out,
            "\nBoard as of a moment: {} tickets ({} live at the head) in {} events; \
             counting the head's tickets page by page (the first page writing every snapshot) took {:.0} ms.\n\n\
             | at | position | limit | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|---|",
            self.tickets, self.live_tickets, self.spec.events, self.first_query_ms
        );
        for c in &self.cases {
            let l = &c.latency;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.1} | {:.1} | {:.1} |",
                c.at, c.position, c.limit, l.p50_ms, l.p99_ms, l.max_ms
            );
        }
    }
}
