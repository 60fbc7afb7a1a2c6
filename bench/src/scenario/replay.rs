//! Replay: a client that missed many messages reconnects with `since` and
//! must get all of them, in order, then `replay_complete`.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use futures::{stream, StreamExt};
use serde::Serialize;
use tokio::sync::watch;
use uuid::Uuid;

use crate::api::{Api, Caller};
use crate::server::{Options, Server, Services};
use crate::socket;

#[derive(Debug, Clone, Serialize)]
pub struct Spec {
    pub missed: usize,
    /// Concurrent writers producing the missed messages.
    pub writers: usize,
}

#[derive(Debug, Serialize)]
pub struct Outcome {
    pub spec: Spec,
    pub replayed: u64,
    /// Every missed message arrived once, in seq order, then `replay_complete`
    /// with the last seq.
    pub complete_and_in_order: bool,
    /// From starting the reconnect to receiving `replay_complete`.
    pub elapsed_ms: f64,
}

pub async fn run(services: &Services, spec: Spec) -> anyhow::Result<Outcome> {
    let server = Server::start(services, "replay", Options::default()).await?;
    let result = measure(&server, spec).await;
    server.stop().await?;
    result
}

async fn measure(server: &Server, spec: Spec) -> anyhow::Result<Outcome> {
    let api = Api::new(&server.base_url)?;
    let user = api.user("bench_replay").await?;
    let project = api.project(&user, "RP").await?;
    let mut tickets = Vec::new();
    for t in 0..spec.writers {
        let created = api
            .clone()
            .create_ticket(&user, &project, &format!("replay {t}"))
            .await?;
        tickets.push(created.context("ticket creation refused")?.ticket_id);
    }
    let url = format!(
        "{}/ws/projects/{project}/tickets/?token={}",
        server.ws_base,
        user.token()
    );
    socket::wait_for_head(&url, spec.writers as i64).await?;
    // The client that will miss everything connects once, then goes away.
    let (socket, since) = socket::connect(&url).await?;
    drop(socket);
    let target = since + spec.missed as i64;
    let (_target, until) = watch::channel(target);
    let (watcher, head) = socket::connect(&url).await?;
    let watching = tokio::spawn(socket::subscribe(watcher, head, until));
    produce(&api, &user, &tickets, spec.missed).await?;
    let seen = tokio::time::timeout(Duration::from_secs(120), watching)
        .await
        .context("the missed messages were not all published within 120 s")??;
    ensure!(
        seen.missing == 0,
        "the live watcher missed {} messages",
        seen.missing
    );

    let started = Instant::now();
    let (mut socket, _) = socket::connect(&format!("{url}&since={since}")).await?;
    let mut next = since + 1;
    let mut in_order = true;
    let complete = socket::next_text(&mut socket, |m| {
        if m.kind == "replay_complete" {
            return Some(m.seq);
        }
        in_order &= m.seq == Some(next);
        next += 1;
        None
    })
    .await?;
    let elapsed = started.elapsed();
    Ok(Outcome {
        replayed: (next - since - 1) as u64,
        complete_and_in_order: in_order && complete == Some(target) && next == target + 1,
        elapsed_ms: elapsed.as_secs_f64() * 1000.0,
        spec,
    })
}

/// Retitles the tickets `count` times in all, one writer per ticket.
async fn produce(
    api: &Api,
    user: &crate::api::User,
    tickets: &[Uuid],
    count: usize,
) -> anyhow::Result<()> {
    let writers = tickets.len();
    let results: Vec<anyhow::Result<()>> = stream::iter(tickets.iter().enumerate())
        .map(|(w, ticket)| async move {
            let mut api = api.clone();
            for n in (w..count).step_by(writers) {
                let done = api.retitle(user, *ticket, &format!("missed {n}")).await?;
                done.with_context(|| format!("retitle {n} refused"))?;
            }
            Ok(())
        })
        .buffer_unordered(writers)
        .collect()
        .await;
    results.into_iter().collect()
}
