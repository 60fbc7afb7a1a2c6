//! Fan-out, light load and idle memory: subscribers on project ticket
//! channels while paced ticket changes flow in; every delivery is checked
//! (contiguous seqs) and timed from the command's acceptance.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{stream, StreamExt, TryStreamExt};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::api::{Accepted, Api, Caller, User};
use crate::latency::{Latency, Summary};
use crate::server::{Options, Server, Services};
use crate::socket::{self, Socket, Tally};

#[derive(Debug, Clone, Serialize)]
pub struct Spec {
    pub projects: usize,
    pub subscribers_per_project: usize,
    /// Users sharing the subscriptions (each member of every project).
    pub users: usize,
    pub tickets_per_project: usize,
    /// Ticket changes per second, spread over the projects.
    pub rate: f64,
    pub duration: Duration,
}

#[derive(Debug, Serialize)]
pub struct Outcome {
    pub spec: Spec,
    pub sockets: usize,
    pub rss_before_sockets_kib: u64,
    pub rss_idle_sockets_kib: u64,
    pub commands_accepted: u64,
    pub commands_refused: u64,
    /// Changes per second actually accepted during the load.
    pub achieved_rate: f64,
    pub deliveries: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub deliveries_per_s: f64,
    /// Command accepted (response received) → message received.
    pub delivery_latency: Summary,
    /// Deliveries that arrived before their command's response.
    pub delivered_before_response: u64,
    pub command_latency: Summary,
    /// The server's `/metrics` once every delivery has arrived (written to a
    /// file of its own beside the report, not into it).
    #[serde(skip)]
    pub metrics: String,
}

impl Outcome {
    /// Server memory the idle sockets added, per socket, in KiB.
    pub fn kib_per_socket(&self) -> f64 {
        let added = self
            .rss_idle_sockets_kib
            .saturating_sub(self.rss_before_sockets_kib);
        added as f64 / self.sockets.max(1) as f64
    }
}

/// The projects under load, and who may act on them.
pub(crate) struct World {
    pub users: Vec<User>,
    pub projects: Vec<String>,
    /// `tickets[p]` are the tickets of `projects[p]`.
    pub tickets: Vec<Vec<Uuid>>,
}

pub async fn run(services: &Services, name: &str, spec: Spec) -> anyhow::Result<Outcome> {
    let server = Server::start(services, name, Options::default()).await?;
    let result = measure(&server, spec).await;
    server.stop().await?;
    result
}

async fn measure(server: &Server, spec: Spec) -> anyhow::Result<Outcome> {
    let api = Api::new(&server.base_url)?;
    let world = build_world(&api, &spec).await?;
    let rss_before_sockets_kib = server.rss_kib()?;
    let (subscribers, targets) =
        connect_all(server, &world, &spec, |_, _, _, socket, head, until| {
            socket::subscribe(socket, head, until)
        })
        .await?;
    // Let allocations from the connection burst settle before reading RSS.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle_sockets_kib = server.rss_kib()?;

    let load = drive(&api, &world, &spec).await;
    announce_heads(&targets, &load, &spec);
    let tallies = collect(subscribers, targets).await?;
    // A server built before it had metrics (an A/B run) has no /metrics.
    let metrics = server.scrape_metrics().await.unwrap_or_else(|e| {
        eprintln!("no metrics scraped: {e:#}");
        String::new()
    });
    let mut outcome = summarise(
        spec,
        load,
        tallies,
        rss_before_sockets_kib,
        rss_idle_sockets_kib,
    );
    outcome.metrics = metrics;
    Ok(outcome)
}

pub(crate) async fn build_world(api: &Api, spec: &Spec) -> anyhow::Result<World> {
    let users: Vec<User> = stream::iter(0..spec.users)
        .map(|i| async move { api.user(&format!("bench_user_{i}")).await })
        .buffered(8)
        .try_collect()
        .await?;
    let (owner, members) = (&users[0], &users[1..]);
    let projects: Vec<String> = stream::iter(0..spec.projects)
        .map(|p| async move {
            let project = api.project(owner, &format!("B{p}")).await?;
            for member in members {
                api.add_member(owner, &project, member).await?;
            }
            anyhow::Ok(project)
        })
        .buffered(16)
        .try_collect()
        .await?;
    let tickets = stream::iter(projects.iter())
        .map(|project| async move {
            let mut tickets = Vec::new();
            for t in 0..spec.tickets_per_project {
                let created = api
                    .clone()
                    .create_ticket(owner, project, &format!("ticket {t}"))
                    .await?;
                tickets.push(created.context("ticket creation refused")?.ticket_id);
            }
            anyhow::Ok(tickets)
        })
        .buffered(16)
        .try_collect()
        .await?;
    Ok(World {
        users,
        projects,
        tickets,
    })
}

/// Opens every subscriber once the channels hold the setup's messages, so
/// each starts from the same head; `subscribe(n, user, channel, socket,
/// head, until)` is the `n`th subscriber's task, on `channel` (its URL
/// without the token) as `user`, to end once its seq reaches `until`.
pub(crate) async fn connect_all<T, F>(
    server: &Server,
    world: &World,
    spec: &Spec,
    subscribe: impl Fn(usize, &User, &str, Socket, i64, watch::Receiver<i64>) -> F,
) -> anyhow::Result<(JoinSet<T>, Vec<watch::Sender<i64>>)>
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    let mut subscribers = JoinSet::new();
    let mut targets = Vec::new();
    for (p, project) in world.projects.iter().enumerate() {
        let (target, until) = watch::channel(i64::MAX);
        targets.push(target);
        let channel = format!("{}/ws/projects/{project}/tickets/", server.ws_base);
        let users: Vec<&User> = (0..spec.subscribers_per_project)
            .map(|s| &world.users[s % world.users.len()])
            .collect();
        let urls: Vec<String> = users
            .iter()
            .map(|user| format!("{channel}?token={}", user.token()))
            .collect();
        socket::wait_for_head(&urls[0], spec.tickets_per_project as i64).await?;
        let sockets: Vec<_> = stream::iter(urls.iter())
            .map(|url| socket::connect(url))
            .buffered(64)
            .try_collect()
            .await
            .with_context(|| format!("subscribing to project {p}"))?;
        for ((socket, head), user) in sockets.into_iter().zip(users) {
            let n = subscribers.len();
            subscribers.spawn(subscribe(n, user, &channel, socket, head, until.clone()));
        }
    }
    Ok((subscribers, targets))
}

/// What the paced load did.
pub(crate) struct Load {
    pub started: Instant,
    pub ended: Instant,
    accepted_at: HashMap<(Uuid, i64), Instant>,
    pub accepted_per_project: Vec<u64>,
    pub refused: u64,
    pub command_latency: Latency,
}

/// One command's fate.
struct Sent {
    project: usize,
    accepted: Option<Accepted>,
    latency: Duration,
    at: Instant,
}

impl Load {
    fn note(&mut self, sent: Result<Sent, tokio::task::JoinError>) {
        match sent {
            Ok(Sent {
                project,
                accepted: Some(accepted),
                latency,
                at,
            }) => {
                self.command_latency.record(latency);
                self.accepted_at
                    .insert((accepted.ticket_id, accepted.version), at);
                self.accepted_per_project[project] += 1;
            }
            _ => self.refused += 1,
        }
    }
}

/// Commands awaiting their response at most; past it the load is saturated
/// and sending waits.
const MAX_IN_FLIGHT: usize = 1024;

/// Sends `rate` retitles per second for `duration`, open loop: each starts
/// on schedule whether or not earlier ones have finished.
pub(crate) async fn drive(api: &Api, world: &World, spec: &Spec) -> Load {
    let total = (spec.rate * spec.duration.as_secs_f64()) as u32;
    let period = Duration::from_secs_f64(1.0 / spec.rate);
    let started = Instant::now();
    let mut load = Load {
        started,
        ended: started,
        accepted_at: HashMap::with_capacity(total as usize),
        accepted_per_project: vec![0; world.projects.len()],
        refused: 0,
        command_latency: Latency::default(),
    };
    let mut tasks = JoinSet::new();
    for i in 0..total as usize {
        tokio::time::sleep_until((started + period * i as u32).into()).await;
        while let Some(done) = tasks.try_join_next() {
            load.note(done);
        }
        if tasks.len() >= MAX_IN_FLIGHT {
            if let Some(done) = tasks.join_next().await {
                load.note(done);
            }
        }
        let project = i % world.projects.len();
        let ticket = world.tickets[project][(i / world.projects.len()) % spec.tickets_per_project];
        let user = world.users[i % world.users.len()].clone();
        let mut api = api.clone();
        tasks.spawn(async move {
            let sent = Instant::now();
            let reply = api.retitle(&user, ticket, &format!("change {i}")).await;
            let at = Instant::now();
            Sent {
                project,
                accepted: reply.ok().flatten(),
                latency: at - sent,
                at,
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        load.note(done);
    }
    load.ended = Instant::now();
    load
}

/// Tells each project's subscribers the seq its channel ends at, now that
/// the load is over: the setup's tickets and every accepted change.
pub(crate) fn announce_heads(targets: &[watch::Sender<i64>], load: &Load, spec: &Spec) {
    for (p, target) in targets.iter().enumerate() {
        let expected = (spec.tickets_per_project as u64 + load.accepted_per_project[p]) as i64;
        target.send_replace(expected);
    }
}

/// Waits for every subscriber to reach its target, giving up after 60 s
/// (what is still missing then counts as lost).
pub(crate) async fn collect<T: 'static>(
    mut subscribers: JoinSet<T>,
    targets: Vec<watch::Sender<i64>>,
) -> anyhow::Result<Vec<T>> {
    let mut tallies = Vec::with_capacity(subscribers.len());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match tokio::time::timeout_at(deadline, subscribers.join_next()).await {
            Ok(Some(tally)) => tallies.push(tally.context("subscriber panicked")?),
            Ok(None) => return Ok(tallies),
            // Dropping the targets ends the stragglers with what they have.
            Err(_) => break,
        }
    }
    drop(targets);
    while let Some(tally) = subscribers.join_next().await {
        tallies.push(tally.context("subscriber panicked")?);
    }
    Ok(tallies)
}

fn summarise(spec: Spec, load: Load, tallies: Vec<Tally>, before: u64, idle: u64) -> Outcome {
    let mut latency = Latency::default();
    let mut early = 0;
    let mut last_delivery = load.started;
    for delivery in tallies.iter().flat_map(|t| &t.deliveries) {
        let Some(accepted) = load
            .accepted_at
            .get(&(delivery.ticket_id, delivery.version))
        else {
            continue; // a setup message, not part of the load
        };
        last_delivery = last_delivery.max(delivery.at);
        if delivery.at < *accepted {
            early += 1;
        }
        latency.record(delivery.at.saturating_duration_since(*accepted));
    }
    let accepted: u64 = load.accepted_per_project.iter().sum();
    let window = last_delivery.max(load.ended) - load.started;
    Outcome {
        sockets: tallies.len(),
        rss_before_sockets_kib: before,
        rss_idle_sockets_kib: idle,
        commands_accepted: accepted,
        commands_refused: load.refused,
        achieved_rate: accepted as f64 / (load.ended - load.started).as_secs_f64(),
        deliveries: latency.summary().count,
        lost: tallies.iter().map(|t| t.missing).sum(),
        duplicated: tallies.iter().map(|t| t.duplicates).sum(),
        deliveries_per_s: latency.summary().count as f64 / window.as_secs_f64(),
        delivery_latency: latency.summary(),
        delivered_before_response: early,
        command_latency: load.command_latency.summary(),
        spec,
        metrics: String::new(),
    }
}
