//! The fault schedule (drawn from the seed alone, so a seed reproduces it)
//! and its injection, each fault followed by a wait until the deployment
//! has recovered: a probe command answered and its message delivered live.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reqwest::Method;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::cluster::{Nats, Postgres, Servers, DATABASE, IDLE_LIMIT};
use crate::load::{Kind, World};
use crate::sockets::Client;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "target", rename_all = "snake_case")]
pub enum Fault {
    /// kill -9 of the instance leading the relay, restarted after a while.
    KillRelayLeader,
    /// kill -9 of the instance leading the projection workers.
    KillProjectionsLeader,
    /// kill -9 of the instance (gateway) with this index.
    KillGateway(usize),
    /// kill -9 of this NATS node, restarted after a while.
    KillNatsNode(usize),
    /// PostgreSQL stopped in immediate mode (a crash), started again.
    RestartPostgres,
    /// SIGSTOP of this instance for longer than the gateway's idle limit.
    PauseGateway(usize),
    /// A client stops reading under a burst of messages: closed with 4008, it resumes.
    SlowClient,
}

impl Fault {
    pub fn name(&self) -> &'static str {
        match self {
            Fault::KillRelayLeader => "kill_relay_leader",
            Fault::KillProjectionsLeader => "kill_projections_leader",
            Fault::KillGateway(_) => "kill_gateway",
            Fault::KillNatsNode(_) => "kill_nats_node",
            Fault::RestartPostgres => "restart_postgres",
            Fault::PauseGateway(_) => "pause_gateway",
            Fault::SlowClient => "slow_client",
        }
    }
}

/// One scheduled fault: injected `gap` after the previous one recovered,
/// the failed part left down for `down`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Step {
    pub fault: Fault,
    pub gap_ms: u64,
    pub down_ms: u64,
}

/// Rounds of every fault kind once, each round in a random order.
pub fn schedule(seed: u64, rounds: usize, instances: usize, nats_nodes: usize) -> Vec<Step> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut steps = Vec::new();
    for _ in 0..rounds {
        let mut round = vec![
            Fault::KillRelayLeader,
            Fault::KillProjectionsLeader,
            Fault::KillGateway(rng.gen_range(0..instances)),
            Fault::KillNatsNode(rng.gen_range(0..nats_nodes)),
            Fault::RestartPostgres,
            Fault::PauseGateway(rng.gen_range(0..instances)),
            Fault::SlowClient,
        ];
        round.shuffle(&mut rng);
        for fault in round {
            let down_ms = match fault {
                Fault::PauseGateway(_) => IDLE_LIMIT.as_millis() as u64 + rng.gen_range(1000..4000),
                // After the burst, longer than the gateway's 5 s send deadline.
                Fault::SlowClient => rng.gen_range(6000..9000),
                _ => rng.gen_range(500..3000),
            };
            steps.push(Step {
                fault,
                gap_ms: rng.gen_range(2000..6000),
                down_ms,
            });
        }
    }
    steps
}

/// What happened to one injected fault.
#[derive(Debug, Clone, Serialize)]
pub struct Injected {
    pub fault: Fault,
    /// Seconds into the load.
    pub at_s: f64,
    /// The instance or node it hit (leaders are found at the time).
    pub target: Option<usize>,
    /// Seconds until the part was back (restarted, resumed).
    pub down_s: f64,
    /// From injection until a probe command (sent at injection, retried)
    /// was answered and delivered live; None when not within the limit.
    pub recovered_s: Option<f64>,
    /// Whether a second probe, once the part was back, went through too.
    pub healthy_after: bool,
    pub note: String,
    /// What went wrong injecting it, or in it (a slow client never closed).
    pub problem: Option<String>,
}

impl Injected {
    /// A violation, if this fault was not recovered from.
    pub fn violation(&self) -> Option<String> {
        let what = if let Some(problem) = &self.problem {
            problem.clone()
        } else if self.recovered_s.is_none() {
            format!("not recovered within {} s", RECOVERY_LIMIT.as_secs())
        } else if !self.healthy_after {
            "no probe went through once the part was back".to_string()
        } else {
            return None;
        };
        Some(format!(
            "{} at {:.1} s (target {:?}): {what}",
            self.fault.name(),
            self.at_s,
            self.target
        ))
    }
}

/// The deployment, and what the injector probes it with.
pub struct Chaos {
    pub pg: Postgres,
    pub nats: Nats,
    pub servers: Servers,
    pub world: Arc<World>,
    pub probe: Probe,
    pub slow_client: Arc<Client>,
    /// The project the slow client listens to.
    pub slow_project: usize,
}

const RECOVERY_LIMIT: Duration = Duration::from_secs(120);

impl Chaos {
    pub async fn inject(&mut self, step: Step, started: Instant) -> Injected {
        let at = Instant::now();
        let mut injected = Injected {
            fault: step.fault,
            at_s: started.elapsed().as_secs_f64(),
            target: None,
            down_s: 0.0,
            recovered_s: None,
            healthy_after: false,
            note: String::new(),
            problem: None,
        };
        let probe = self.probe.clone();
        let first = tokio::spawn(async move { probe.run().await.then(|| at.elapsed()) });
        let down = Duration::from_millis(step.down_ms);
        if let Err(e) = self.apply(step.fault, down, &mut injected).await {
            injected.problem = Some(format!("{e:#}"));
        }
        injected.down_s = at.elapsed().as_secs_f64();
        injected.recovered_s = first.await.ok().flatten().map(|d| d.as_secs_f64());
        injected.healthy_after = self.probe.clone().run().await;
        injected
    }

    async fn apply(
        &mut self,
        fault: Fault,
        down: Duration,
        injected: &mut Injected,
    ) -> anyhow::Result<()> {
        match fault {
            Fault::KillRelayLeader | Fault::KillProjectionsLeader => {
                let role = if fault == Fault::KillRelayLeader {
                    "relay"
                } else {
                    "projections"
                };
                let db = self.pg.connect(DATABASE).await?;
                let i = self.servers.leader(&db, role).await?;
                injected.target = Some(i);
                self.bounce_instance(i, down).await
            }
            Fault::KillGateway(i) => {
                injected.target = Some(i);
                self.bounce_instance(i, down).await
            }
            Fault::KillNatsNode(n) => {
                injected.target = Some(n);
                self.nats.kill_node(n).await?;
                tokio::time::sleep(down).await;
                self.nats.start_node(n).await
            }
            Fault::RestartPostgres => {
                self.pg.crash().await?;
                tokio::time::sleep(down).await;
                self.pg.start().await
            }
            Fault::PauseGateway(i) => {
                injected.target = Some(i);
                let targets = &self.world.api.targets;
                self.servers.pause(i).await?;
                targets.set_up(i, false);
                tokio::time::sleep(down).await;
                self.servers.resume(i).await?;
                targets.set_up(i, true);
                Ok(())
            }
            Fault::SlowClient => {
                injected.note = self.slow_client(down).await?;
                Ok(())
            }
        }
    }

    async fn bounce_instance(&mut self, i: usize, down: Duration) -> anyhow::Result<()> {
        let targets = self.world.api.targets.clone();
        targets.set_up(i, false);
        self.servers.kill_instance(i).await?;
        tokio::time::sleep(down).await;
        self.servers.start_instance(i).await?;
        targets.set_up(i, true);
        Ok(())
    }

    /// Stops the slow client reading while a burst of comments goes to its
    /// channel and for `linger` after, then lets it read: the gateway must
    /// have let it go, and it resumes (the socket check then finds no gap).
    /// Let go is a 4008 close, or, when even the close frame found the
    /// buffers full or the stall outlasted the idle limit (a slow burst on
    /// a loaded machine), a dropped connection: either way a client that
    /// does not read cannot hold the gateway.
    async fn slow_client(&self, linger: Duration) -> anyhow::Result<String> {
        let before = self.slow_client.snapshot();
        let slow_closes = |log: &crate::sockets::Log| log.closes.get(&4008).copied().unwrap_or(0);
        self.slow_client.stalled.store(true, Ordering::SeqCst);
        let burst = tokio::time::timeout(Duration::from_secs(90), self.burst()).await;
        tokio::time::sleep(linger).await;
        self.slow_client.stalled.store(false, Ordering::SeqCst);
        let resumed = crate::cluster::wait_until(Duration::from_secs(30), "a resume", || async {
            self.slow_client.snapshot().connects > before.connects
        })
        .await;
        let sent = if burst.is_ok() {
            "burst sent"
        } else {
            "burst cut short"
        };
        let log = self.slow_client.snapshot();
        anyhow::ensure!(
            resumed.is_ok(),
            "{sent}; the stalled client was never let go (closes {:?}, {} messages, {} connections)",
            log.closes,
            log.seqs.len(),
            log.connects
        );
        if slow_closes(&log) > slow_closes(&before) {
            Ok(format!("{sent}; closed with 4008, resumed"))
        } else {
            Ok(format!(
                "{sent}; dropped (closes {:?}), resumed",
                log.closes
            ))
        }
    }

    /// 480 comments of 10 KB on the slow client's project, 8 at a time:
    /// more than the socket's queue and the kernel's buffers (up to 4 MB
    /// on loopback) hold.
    async fn burst(&self) {
        let project = self.slow_project;
        let tickets = self
            .world
            .tickets
            .lock()
            .map(|t| t[project].clone())
            .unwrap_or_default();
        let Some(&ticket) = tickets.first() else {
            return;
        };
        let jobs = (0..8).map(|w| {
            let world = self.world.clone();
            async move {
                let user = world.users[w % world.users.len()].clone();
                for _ in 0..60 {
                    let marker = crate::load::marker();
                    let body = json!({"body": format!("{marker} {}", "x".repeat(10_000 - 30))});
                    let path = format!("/api/tickets/{ticket}/comments");
                    world
                        .command(&user, Method::POST, &path, &body, marker, Kind::Comment)
                        .await;
                }
            }
        });
        futures::future::join_all(jobs).await;
    }
}

/// A command in a project of its own and a socket on its channel.
#[derive(Clone)]
pub struct Probe {
    pub world: Arc<World>,
    pub project: Uuid,
    pub client: Arc<Client>,
}

impl Probe {
    /// Until a probe ticket is created and its message reaches the probe
    /// socket (live, or on its resume), within [`RECOVERY_LIMIT`].
    pub async fn run(self) -> bool {
        let world = &self.world;
        let Some(user) = world.users.first() else {
            return false;
        };
        let marker = crate::load::marker();
        let path = format!("/api/projects/{}/tickets", self.project);
        let body = json!({"title": marker});
        let command = world.command(user, Method::POST, &path, &body, marker, Kind::Create);
        let Ok(reply) = tokio::time::timeout(RECOVERY_LIMIT, command).await else {
            return false;
        };
        // The probe project has only probe tickets: the ticket's number is its seq.
        let Some(number) = reply.and_then(|r| r["number"].as_i64()) else {
            return false;
        };
        crate::cluster::wait_until(RECOVERY_LIMIT, "probe delivered", || async {
            self.client.last.load(Ordering::SeqCst) >= number
        })
        .await
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_one_schedule_with_every_fault_each_round() {
        let a = schedule(42, 2, 3, 3);
        assert_eq!(a, schedule(42, 2, 3, 3));
        assert_ne!(a, schedule(43, 2, 3, 3));
        for round in a.chunks(7) {
            let mut kinds: Vec<&str> = round.iter().map(|s| s.fault.name()).collect();
            kinds.sort_unstable();
            kinds.dedup();
            assert_eq!(kinds.len(), 7, "{round:?}");
        }
    }
}
