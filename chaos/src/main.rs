//! `ticketflow-chaos`: three ticketflow instances, a three-node NATS
//! JetStream cluster and a private PostgreSQL on loopback, under a command
//! load and hundreds of resuming WebSocket clients, while a seeded schedule
//! of faults hits them; then a verifier that reads the database and the
//! stream directly. Exits 1 on any violation, printing the seed.

mod api;
mod cluster;
mod faults;
mod load;
mod report;
mod sockets;
mod verify;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use rand::seq::SliceRandom;
use rand::Rng;
use reqwest::Method;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use api::{Api, Targets, User};
use cluster::{Nats, Postgres, Servers, DATABASE, STREAM};
use faults::Chaos;
use load::{Answer, World};
use report::Report;
use sockets::{Channel, Client};

#[derive(Parser)]
#[command(about = "Chaos run over a three-instance ticketflow deployment on loopback")]
struct Args {
    /// Seed of the fault schedule (random when absent; printed either way).
    #[arg(long)]
    seed: Option<u64>,
    /// Seconds of load (faults are injected during it).
    #[arg(long, default_value_t = 75)]
    duration: u64,
    /// Where the report (chaos.json, chaos.md) goes.
    #[arg(long, default_value = "chaos-report")]
    out: PathBuf,
    #[arg(long, default_value_t = 30)]
    users: usize,
    /// WebSocket clients (tickets, notifications and some presence).
    #[arg(long, default_value_t = 240)]
    sockets: usize,
    #[arg(long, default_value_t = 2)]
    projects: usize,
    #[arg(long, env = "TICKETFLOW_BIN")]
    ticketflow_bin: PathBuf,
    #[arg(long, env = "NATS_SERVER_BIN")]
    nats_server_bin: PathBuf,
    #[arg(long, default_value = "/usr/lib/postgresql/15/bin")]
    pg_bin: PathBuf,
    /// Keep the working directory (data and logs) even when the run passes.
    #[arg(long)]
    keep: bool,
}

const INSTANCES: usize = 3;
const NATS_NODES: usize = 3;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| rand::thread_rng().gen());
    println!("chaos: seed {seed} (reproduce the schedule with --seed {seed})");
    let work = std::env::temp_dir().join(format!("ticketflow-chaos-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let outcome = run(&args, seed, &work).await;
    match &outcome {
        Ok(report) if report.findings.total() == 0 && !args.keep => {
            let _ = std::fs::remove_dir_all(&work);
        }
        _ => println!("chaos: data and logs kept in {}", work.display()),
    }
    let report = outcome?;
    report.write(&args.out)?;
    println!("{}", report.markdown());
    if report.findings.total() > 0 {
        println!(
            "chaos: FAILED with seed {seed}: {} violation(s)",
            report.findings.total()
        );
        std::process::exit(1);
    }
    println!("chaos: passed, seed {seed}");
    Ok(())
}

async fn run(args: &Args, seed: u64, work: &std::path::Path) -> anyhow::Result<Report> {
    let pg = Postgres::init(&args.pg_bin, work).await?;
    pg.connect("postgres")
        .await?
        .batch_execute(&format!("CREATE DATABASE {DATABASE}"))
        .await?;
    let nats = Nats::start(&args.nats_server_bin, work, NATS_NODES).await?;
    let nats_url = nats.url();
    let servers = Servers::start(
        &args.ticketflow_bin,
        work,
        pg.url(DATABASE),
        nats_url.clone(),
        INSTANCES,
    )
    .await?;
    println!("chaos: deployment up in {}", work.display());
    let targets = Targets::new(servers.instances.iter().map(|i| i.port).collect());
    let api = Api::new(targets.clone())?;
    let (world, probe_project) = setup(api, args.users, args.projects).await?;
    println!(
        "chaos: {} users, {} projects",
        world.users.len(),
        world.projects.len()
    );

    let (stop_sockets, stopped) = watch::channel(false);
    let mut clients = spawn_clients(&world, args.sockets);
    let probe_client = Client::new(
        Channel::Tickets(probe_project),
        world.users[0].clone(),
        false,
    );
    let slow_client = Client::new(
        Channel::Tickets(world.projects[0]),
        world.users[0].clone(),
        true,
    );
    clients.push(probe_client.clone());
    clients.push(slow_client.clone());
    let client_tasks: Vec<JoinHandle<()>> = clients
        .iter()
        .map(|c| tokio::spawn(c.clone().run(targets.clone(), stopped.clone())))
        .collect();
    cluster::wait_until(
        Duration::from_secs(120),
        "every socket connected",
        || async {
            clients
                .iter()
                .all(|c| !c.channel.has_seqs() || c.snapshot().first_since.is_some())
        },
    )
    .await?;
    println!(
        "chaos: {} sockets connected; load and faults for {} s",
        clients.len(),
        args.duration
    );

    let started = *world.started.get_or_init(Instant::now);
    let users: Vec<JoinHandle<()>> = (0..world.users.len())
        .map(|i| tokio::spawn(world.clone().user_loop(i)))
        .collect();
    let mut chaos = Chaos {
        pg,
        nats,
        servers,
        world: world.clone(),
        probe: faults::Probe {
            world: world.clone(),
            project: probe_project,
            client: probe_client,
        },
        slow_client,
        slow_project: 0,
    };
    let load = Duration::from_secs(args.duration);
    let rounds = (args.duration / 60).max(1) as usize * 2;
    let mut injected = Vec::new();
    for step in faults::schedule(seed, rounds, INSTANCES, NATS_NODES) {
        if started.elapsed() + Duration::from_millis(step.gap_ms) >= load {
            break;
        }
        tokio::time::sleep(Duration::from_millis(step.gap_ms)).await;
        let done = chaos.inject(step, started).await;
        println!(
            "chaos: {:>6.1}s {} {:?}: recovered after {:?} s {}",
            done.at_s,
            done.fault.name(),
            done.target,
            done.recovered_s,
            done.note
        );
        injected.push(done);
    }
    tokio::time::sleep(load.saturating_sub(started.elapsed())).await;

    println!("chaos: load over; waiting for the last commands");
    world.stop.store(true, Ordering::SeqCst);
    let give_up = world.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        give_up.give_up.store(true, Ordering::SeqCst);
    });
    futures::future::join_all(users).await;

    let mut findings = verify::Findings::default();
    for f in &injected {
        if f.recovered_s.is_none()
            || !f.healthy_after
            || f.note.contains("NOT")
            || f.note.contains("failed")
        {
            findings
                .faults
                .push(format!("{} {:?}: {}", f.fault.name(), f.target, f.note));
        }
    }
    let db = chaos.pg.connect(DATABASE).await?;
    if let Err(e) = settle(&db, &clients).await {
        findings
            .faults
            .push(format!("the deployment did not settle: {e:#}"));
    }
    let _ = stop_sockets.send(true);
    futures::future::join_all(client_tasks).await;
    let logs: Vec<(Channel, sockets::Log)> = clients
        .iter()
        .map(|c| (c.channel.clone(), c.snapshot()))
        .collect();

    println!("chaos: verifying");
    let outcomes = world.outcomes.lock().map(|o| o.clone()).unwrap_or_default();
    findings.commands = verify::commands(&db, &outcomes).await?;
    findings.sockets = verify::sockets(&logs, &verify::heads(&db).await?);
    findings.stream = verify::stream(&db, &nats_url, STREAM).await?;
    chaos.servers.stop_all().await?;
    // The copy needs the database without sessions.
    drop(db);
    let admin = chaos.pg.connect("postgres").await?;
    let copy =
        verify::rebuild_copy(&admin, &args.ticketflow_bin, |d| chaos.pg.url(d), DATABASE).await?;
    let rebuilt = chaos.pg.connect(&copy).await?;
    let db = chaos.pg.connect(DATABASE).await?;
    findings.read_models = verify::read_models(&db, &rebuilt).await?;

    let mut commands: BTreeMap<String, usize> = BTreeMap::new();
    for o in &outcomes {
        let answer = match o.answer {
            Answer::Applied(_) => "applied".to_string(),
            Answer::Refused(s) => format!("refused {s}"),
            Answer::Unknown => "unknown".to_string(),
        };
        *commands
            .entry(format!("{:?} {answer}", o.kind).to_lowercase())
            .or_default() += 1;
    }
    let mut closes = BTreeMap::new();
    for (_, log) in &logs {
        for (code, n) in &log.closes {
            *closes.entry(*code).or_default() += u64::from(*n);
        }
    }
    let sum = |f: fn(&sockets::Log) -> u64| logs.iter().map(|(_, l)| f(l)).sum();
    Ok(Report {
        seed,
        load_s: args.duration,
        users: args.users,
        sockets: logs.len(),
        commands,
        command_attempts: outcomes.iter().map(|o| u64::from(o.attempts)).sum(),
        deliveries: sum(|l| l.seqs.len() as u64),
        connects: sum(|l| u64::from(l.connects)),
        reconnects: sum(|l| u64::from(l.connects.saturating_sub(1))),
        failed_connects: sum(|l| u64::from(l.failed_connects)),
        dropped: sum(|l| u64::from(l.dropped)),
        closes,
        resyncs: sum(|l| u64::from(l.resyncs)),
        faults_by_kind: injected.iter().fold(BTreeMap::new(), |mut m, f| {
            *m.entry(f.fault.name()).or_default() += 1;
            m
        }),
        faults: injected,
        findings,
    })
}

/// Users (the first one admin of everything), the projects with everyone
/// in them and a few tickets each, and the probe project (admin alone).
async fn setup(
    api: Api,
    users: usize,
    projects: usize,
) -> anyhow::Result<(Arc<World>, uuid::Uuid)> {
    let mut all: Vec<User> = Vec::new();
    for chunk in (0..users.max(2)).collect::<Vec<_>>().chunks(4) {
        let made = futures::future::try_join_all(chunk.iter().map(|i| {
            let api = api.clone();
            async move { api.register(&format!("chaos-user-{i}")).await }
        }))
        .await?;
        all.extend(made);
    }
    let admin = all[0].token();
    let mut ids = Vec::new();
    let mut tickets = Vec::new();
    for p in 0..=projects {
        let key = if p == projects {
            "PROBE".to_string()
        } else {
            format!("CH{p}")
        };
        let body = json!({"key": key, "name": key});
        let project = api
            .expect(Method::POST, "/api/projects", Some(&admin), body, 201)
            .await?;
        let id = load::id_of(&project).context("project id")?;
        ids.push(id);
        if p == projects {
            break;
        }
        for user in &all[1..] {
            let body = json!({"username": user.username});
            let path = format!("/api/projects/{id}/members");
            api.expect(Method::POST, &path, Some(&admin), body, 201)
                .await?;
        }
        let mut made = Vec::new();
        for n in 0..3 {
            let body = json!({"title": format!("seed ticket {n}")});
            let path = format!("/api/projects/{id}/tickets");
            let ticket = api
                .expect(Method::POST, &path, Some(&admin), body, 201)
                .await?;
            made.push(load::id_of(&ticket).context("ticket id")?);
        }
        tickets.push(made);
    }
    let probe = ids.pop().context("probe project")?;
    let world = World {
        api,
        projects: ids,
        users: all,
        tickets: Mutex::new(tickets),
        outcomes: Mutex::default(),
        stop: AtomicBool::new(false),
        give_up: AtomicBool::new(false),
        started: std::sync::OnceLock::new(),
    };
    Ok((Arc::new(world), probe))
}

/// A tenth presence sockets, the rest ticket and notification sockets, on
/// random projects and users.
fn spawn_clients(world: &World, count: usize) -> Vec<Arc<Client>> {
    let mut rng = rand::thread_rng();
    (0..count)
        .map(|i| {
            let user = world
                .users
                .choose(&mut rng)
                .cloned()
                .unwrap_or_else(|| world.users[0].clone());
            let project = *world
                .projects
                .choose(&mut rng)
                .unwrap_or(&world.projects[0]);
            let channel = match i % 10 {
                0 => Channel::Presence(project),
                1..=5 => Channel::Tickets(project),
                _ => Channel::Notifications(user.id),
            };
            Client::new(channel, user, false)
        })
        .collect()
}

/// Waits until every projection has applied the whole log and every
/// socket has reached its channel's head.
async fn settle(db: &tokio_postgres::Client, clients: &[Arc<Client>]) -> anyhow::Result<()> {
    cluster::wait_until(
        Duration::from_secs(120),
        "projections caught up",
        || async {
            let row = db
                .query_one(
                    "SELECT (SELECT coalesce(max(position), 0) FROM events) \
                      <= (SELECT coalesce(min(position), 0) FROM projection_checkpoints)",
                    &[],
                )
                .await;
            row.is_ok_and(|r| r.get::<_, bool>(0))
        },
    )
    .await?;
    let heads = verify::heads(db).await?;
    cluster::wait_until(
        Duration::from_secs(120),
        "sockets at their heads",
        || async {
            clients.iter().all(|c| {
                let head = heads.get(&c.channel).copied().unwrap_or(0);
                !c.channel.has_seqs() || c.last.load(Ordering::SeqCst) >= head
            })
        },
    )
    .await
}
