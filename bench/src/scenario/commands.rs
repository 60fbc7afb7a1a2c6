//! Command throughput: closed-loop HTTP clients creating tickets and
//! patching them, spread over several projects.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{stream, StreamExt, TryStreamExt};
use serde::Serialize;
use tokio::task::JoinSet;

use crate::api::{Api, Caller, Connection, User};
use crate::latency::{Latency, Summary};
use crate::server::{Options, Server, Services};

#[derive(Debug, Clone, Serialize)]
pub struct Spec {
    pub clients: usize,
    pub projects: usize,
    /// Patches sent to each ticket after creating it.
    pub patches_per_ticket: usize,
    /// Not measured: lets pools, caches and the JIT-less server warm up.
    pub warmup: Duration,
    pub duration: Duration,
}

#[derive(Debug, Serialize)]
pub struct Outcome {
    pub spec: Spec,
    pub commands: u64,
    pub refused: u64,
    pub commands_per_s: f64,
    pub latency: Summary,
}

pub async fn run(services: &Services, spec: Spec) -> anyhow::Result<Outcome> {
    let server = Server::start(services, "commands", Options::default()).await?;
    let result = measure(&server, spec).await;
    server.stop().await?;
    result
}

async fn measure(server: &Server, spec: Spec) -> anyhow::Result<Outcome> {
    let api = Api::new(&server.base_url)?;
    let owners: Vec<(User, String)> = stream::iter(0..spec.projects)
        .map(|p| {
            let api = api.clone();
            async move {
                let owner = api.user(&format!("bench_owner_{p}")).await?;
                let project = api.project(&owner, &format!("C{p}")).await?;
                anyhow::Ok((owner, project))
            }
        })
        .buffered(8)
        .try_collect()
        .await?;
    let start = Instant::now() + spec.warmup;
    let end = start + spec.duration;
    let mut clients = JoinSet::new();
    for c in 0..spec.clients {
        let (owner, project) = owners[c % owners.len()].clone();
        let connection = Connection::open(&server.base_url).await?;
        let patches = spec.patches_per_ticket;
        clients.spawn(client(connection, owner, project, patches, start, end));
    }
    let mut total = Tally::default();
    while let Some(tally) = clients.join_next().await {
        total.merge(tally.context("client panicked")??);
    }
    let commands = total.latency.summary().count;
    Ok(Outcome {
        commands,
        refused: total.refused,
        commands_per_s: commands as f64 / spec.duration.as_secs_f64(),
        latency: total.latency.summary(),
        spec,
    })
}

#[derive(Default)]
struct Tally {
    latency: Latency,
    refused: u64,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latency.merge(&other.latency);
        self.refused += other.refused;
    }

    /// Counts a command that ended at `now` if it started in the window.
    fn note(&mut self, ok: bool, sent: Instant, now: Instant, start: Instant, end: Instant) {
        if sent < start || now > end {
            return;
        }
        match ok {
            true => self.latency.record(now - sent),
            false => self.refused += 1,
        }
    }
}

/// One client: create a ticket, patch it `patches` times, repeat until `end`.
async fn client(
    mut api: Connection,
    owner: User,
    project: String,
    patches: usize,
    start: Instant,
    end: Instant,
) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    let mut n = 0u64;
    while Instant::now() < end {
        n += 1;
        let sent = Instant::now();
        let created = api
            .create_ticket(&owner, &project, &format!("bench {n}"))
            .await?;
        tally.note(created.is_some(), sent, Instant::now(), start, end);
        let Some(ticket) = created else { continue };
        for k in 0..patches {
            let sent = Instant::now();
            let title = format!("bench {n} take {k}");
            let patched = api.retitle(&owner, ticket.ticket_id, &title).await?;
            tally.note(patched.is_some(), sent, Instant::now(), start, end);
        }
    }
    Ok(tally)
}
