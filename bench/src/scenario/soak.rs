//! Soak: a long run of moderate fan-out with reconnect churn. Subscribers on
//! project ticket channels take paced ticket changes while a steady share of
//! them drops and resumes with `since`; every seq must arrive exactly once
//! across all of a subscriber's connections. The server's RSS and open file
//! descriptors are sampled all along: after the warm-up they must stay flat.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use serde::Serialize;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message as Frame;

use super::fanout;
use crate::api::{Api, User};
use crate::latency::Summary;
use crate::server::{Options, Server, Services};
use crate::socket::{self, Message, Socket};

/// How often the users get new access tokens (they last 15 minutes).
const RENEW_EVERY: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, Serialize)]
pub struct Spec {
    /// The fan-out under load; its duration is the soak's.
    pub load: fanout::Spec,
    /// How often each subscriber drops and resumes; the subscribers are
    /// staggered over it, so a steady share of them resumes at any time.
    pub resume_every: Duration,
    /// How often the server's RSS and descriptors are read.
    pub sample_every: Duration,
    /// The share of the run, from its start, before the trends count.
    pub warmup_fraction: f64,
}

#[derive(Debug, Serialize)]
pub struct Sample {
    /// Seconds since the load started.
    pub at_s: f64,
    pub rss_kib: u64,
    pub open_fds: u64,
}

/// How a figure moved over the samples after the warm-up.
#[derive(Debug, Serialize)]
pub struct Trend {
    pub first: u64,
    pub last: u64,
    pub min: u64,
    pub max: u64,
    /// The mean of the last fifth of the samples against the first fifth's,
    /// in percent (a mean, so one sample taken mid-reconnect is no trend).
    pub drift_pct: f64,
}

#[derive(Debug, Serialize)]
pub struct Outcome {
    pub spec: Spec,
    pub sockets: usize,
    pub commands_accepted: u64,
    pub commands_refused: u64,
    /// Changes per second actually accepted during the load.
    pub achieved_rate: f64,
    pub command_latency: Summary,
    pub deliveries: u64,
    pub lost: u64,
    pub duplicated: u64,
    /// Planned drops, each resumed with `since`.
    pub resumes: u64,
    /// Connections that ended without being dropped (then resumed too).
    pub unplanned_resumes: u64,
    /// `resync_required` answers to a resume (each counts what it skipped as lost).
    pub resyncs: u64,
    /// Subscribers that could not resume and gave up.
    pub failed_subscribers: u64,
    pub rss_kib: Trend,
    pub open_fds: Trend,
    pub samples: Vec<Sample>,
}

pub async fn run(services: &Services, spec: Spec) -> anyhow::Result<Outcome> {
    let server = Server::start(services, "soak", Options::default()).await?;
    let result = measure(&server, spec).await;
    server.stop().await?;
    result
}

async fn measure(server: &Server, spec: Spec) -> anyhow::Result<Outcome> {
    let api = Api::new(&server.base_url)?;
    let world = fanout::build_world(&api, &spec.load).await?;
    let sockets = spec.load.projects * spec.load.subscribers_per_project;
    let start = Instant::now();
    let every = spec.resume_every;
    let (subscribers, targets) = fanout::connect_all(
        server,
        &world,
        &spec.load,
        |n, user, channel, socket, head, until| {
            let first_drop = start + every.mul_f64(n as f64 / sockets as f64);
            let resume = Resume {
                user: user.clone(),
                channel: channel.to_string(),
            };
            subscribe(resume, socket, head, first_drop, every, until)
        },
    )
    .await?;
    let (load, samples, renewed) = tokio::join!(
        fanout::drive(&api, &world, &spec.load),
        sample(server, &spec),
        log_in_again(&api, &world.users, spec.load.duration)
    );
    let samples = samples?;
    renewed?;
    fanout::announce_heads(&targets, &load, &spec.load);
    let seen = fanout::collect(subscribers, targets).await?;
    summarise(spec, load, seen, samples)
}

/// What one subscriber saw, across all its connections.
#[derive(Default)]
struct Seen {
    received: u64,
    lost: u64,
    duplicated: u64,
    resumes: u64,
    unplanned: u64,
    resyncs: u64,
}

impl Seen {
    /// Checks a message's seq against the last one (`last` moves on).
    fn read(&mut self, text: &str, last: &mut i64) {
        let Ok(message) = serde_json::from_str::<Message>(text) else {
            return;
        };
        match (message.kind, message.seq) {
            ("resync_required", Some(head)) => {
                self.resyncs += 1;
                self.lost += (head - *last).max(0) as u64;
                *last = head.max(*last);
            }
            ("ticket_update" | "comment_added", Some(seq)) if seq <= *last => {
                self.duplicated += 1;
            }
            ("ticket_update" | "comment_added", Some(seq)) => {
                self.lost += (seq - *last - 1) as u64;
                self.received += 1;
                *last = seq;
            }
            _ => {}
        }
    }
}

/// Reads its channel until the seq reaches `until`, dropping the connection
/// at `first_drop` and every `every` after (while the load runs) and
/// resuming with `since` = the last seq it got.
async fn subscribe(
    resume: Resume,
    mut socket: Socket,
    head: i64,
    first_drop: Instant,
    every: Duration,
    mut until: watch::Receiver<i64>,
) -> anyhow::Result<Seen> {
    let mut seen = Seen::default();
    let mut last = head;
    let mut next_drop = first_drop;
    loop {
        let target = *until.borrow();
        if last >= target {
            break;
        }
        let churning = target == i64::MAX;
        tokio::select! {
            frame = socket.next() => match frame {
                Some(Ok(Frame::Text(text))) => seen.read(text.as_str(), &mut last),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    seen.unplanned += 1;
                    socket = resume.from(last).await?;
                }
            },
            _ = tokio::time::sleep_until(next_drop.into()), if churning => {
                // Whatever the server still sends is lost with the socket: the resume replays it.
                let _ = socket.close(None).await;
                seen.resumes += 1;
                socket = resume.from(last).await?;
                next_drop += every;
            }
            changed = until.changed() => if changed.is_err() { break },
        }
    }
    let target = *until.borrow();
    if target != i64::MAX && last < target {
        seen.lost += (target - last) as u64;
    }
    let _ = socket.close(None).await;
    Ok(seen)
}

/// Where and as whom a subscriber reconnects (with the user's latest token).
struct Resume {
    user: User,
    channel: String,
}

impl Resume {
    async fn from(&self, since: i64) -> anyhow::Result<Socket> {
        let token = self.user.token();
        let url = format!("{}?token={token}&since={since}", self.channel);
        let (socket, _) = socket::connect(&url).await.context("resuming")?;
        Ok(socket)
    }
}

/// Access tokens last 15 minutes: the users log in again every few minutes
/// of a longer run, as a client refreshes its token (a socket the server
/// closes when its token expires resumes with the new one).
async fn log_in_again(api: &Api, users: &[User], duration: Duration) -> anyhow::Result<()> {
    let end = Instant::now() + duration;
    let mut next = Instant::now() + RENEW_EVERY;
    while next < end {
        tokio::time::sleep_until(next.into()).await;
        for user in users {
            api.log_in_again(user).await?;
        }
        next += RENEW_EVERY;
    }
    Ok(())
}

/// Reads the server's RSS and descriptors every `sample_every` for the
/// load's duration (the load runs alongside).
async fn sample(server: &Server, spec: &Spec) -> anyhow::Result<Vec<Sample>> {
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut ticks = tokio::time::interval(spec.sample_every);
    loop {
        ticks.tick().await;
        let at = started.elapsed();
        samples.push(Sample {
            at_s: at.as_secs_f64(),
            rss_kib: server.rss_kib()?,
            open_fds: server.open_fds()?,
        });
        if at >= spec.load.duration {
            return Ok(samples);
        }
    }
}

fn summarise(
    spec: Spec,
    load: fanout::Load,
    seen: Vec<anyhow::Result<Seen>>,
    samples: Vec<Sample>,
) -> anyhow::Result<Outcome> {
    let sockets = seen.len();
    let failed = seen.iter().filter(|s| s.is_err()).count() as u64;
    if let Some(Err(e)) = seen.iter().find(|s| s.is_err()) {
        eprintln!("soak: {failed} subscribers gave up; the first: {e:#}");
    }
    let seen: Vec<Seen> = seen.into_iter().filter_map(Result::ok).collect();
    let sum = |f: fn(&Seen) -> u64| seen.iter().map(f).sum::<u64>();
    let warmup = spec.load.duration.as_secs_f64() * spec.warmup_fraction;
    let settled: Vec<&Sample> = samples.iter().filter(|s| s.at_s >= warmup).collect();
    let accepted: u64 = load.accepted_per_project.iter().sum();
    Ok(Outcome {
        sockets,
        commands_accepted: accepted,
        commands_refused: load.refused,
        achieved_rate: accepted as f64 / (load.ended - load.started).as_secs_f64(),
        command_latency: load.command_latency.summary(),
        deliveries: sum(|s| s.received),
        lost: sum(|s| s.lost),
        duplicated: sum(|s| s.duplicated),
        resumes: sum(|s| s.resumes),
        unplanned_resumes: sum(|s| s.unplanned),
        resyncs: sum(|s| s.resyncs),
        failed_subscribers: failed,
        rss_kib: trend(&settled, |s| s.rss_kib).context("no sample after the warm-up")?,
        open_fds: trend(&settled, |s| s.open_fds).context("no sample after the warm-up")?,
        samples,
        spec,
    })
}

fn trend(samples: &[&Sample], figure: fn(&Sample) -> u64) -> Option<Trend> {
    let values: Vec<u64> = samples.iter().map(|s| figure(s)).collect();
    let (first, last) = (*values.first()?, *values.last()?);
    let window = (values.len() / 5).max(1);
    let mean = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len() as f64;
    let early = mean(&values[..window]);
    let late = mean(&values[values.len() - window..]);
    Some(Trend {
        first,
        last,
        min: *values.iter().min()?,
        max: *values.iter().max()?,
        drift_pct: (late / early - 1.0) * 100.0,
    })
}
