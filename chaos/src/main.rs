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
mod setup;
mod sockets;
mod verify;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Parser;
use rand::Rng;
use tokio::task::JoinHandle;

use api::{Api, Targets};
use cluster::{Nats, Postgres, Servers, DATABASE, STREAM};
use faults::{Chaos, Injected, Probe};
use report::Report;
use setup::Sockets;
use sockets::{Channel, Log};

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
    /// The directory of PostgreSQL's `initdb` and `pg_ctl` (scripts/chaos.sh
    /// passes the newest of Debian's `/usr/lib/postgresql/<version>/bin`).
    #[arg(long, env = "PG_BIN")]
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

async fn run(args: &Args, seed: u64, work: &Path) -> anyhow::Result<Report> {
    let (pg, nats, servers) = deploy(args, work).await?;
    println!("chaos: deployment up in {}", work.display());
    let targets = Targets::new(servers.instances.iter().map(|i| i.port).collect());
    let (world, probe_project) =
        setup::world(Api::new(targets.clone())?, args.users, args.projects).await?;
    let sockets = Sockets::connect(&world, &targets, args.sockets, probe_project).await?;
    println!(
        "chaos: {} users, {} sockets connected; load and faults for {} s",
        world.users.len(),
        sockets.clients.len(),
        args.duration
    );
    let mut chaos = Chaos {
        pg,
        nats,
        servers,
        world: world.clone(),
        probe: Probe {
            world: world.clone(),
            project: probe_project,
            client: sockets.probe.clone(),
        },
        slow_client: sockets.slow.clone(),
        slow_project: 0,
    };
    let started = *world.started.get_or_init(Instant::now);
    let users: Vec<JoinHandle<()>> = (0..world.users.len())
        .map(|i| tokio::spawn(world.clone().user_loop(i)))
        .collect();
    let injected = inject_faults(&mut chaos, seed, args.duration, started).await;
    println!("chaos: load over; waiting for the last commands");
    world.stop.store(true, Ordering::SeqCst);
    let give_up = world.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        give_up.give_up.store(true, Ordering::SeqCst);
    });
    futures::future::join_all(users).await;
    let (findings, logs) = verify_all(&mut chaos, sockets, &injected, &args.ticketflow_bin).await?;
    let outcomes = world.outcomes.lock().map(|o| o.clone()).unwrap_or_default();
    let server = version(&args.ticketflow_bin).await?;
    let report = Report::new(seed, server, args, &outcomes, &logs, injected, findings);
    Ok(report)
}

/// `ticketflow --version`: the revision the run tested.
async fn version(bin: &Path) -> anyhow::Result<String> {
    let out = tokio::process::Command::new(bin)
        .arg("--version")
        .output()
        .await?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// PostgreSQL with the run's database, the NATS cluster, the instances.
async fn deploy(args: &Args, work: &Path) -> anyhow::Result<(Postgres, Nats, Servers)> {
    let pg = Postgres::init(&args.pg_bin, work).await?;
    pg.connect("postgres")
        .await?
        .batch_execute(&format!("CREATE DATABASE {DATABASE}"))
        .await?;
    let nats = Nats::start(&args.nats_server_bin, work, NATS_NODES).await?;
    let database_url = pg.url(DATABASE);
    let servers = Servers::start(
        &args.ticketflow_bin,
        work,
        database_url,
        nats.url(),
        INSTANCES,
    )
    .await?;
    Ok((pg, nats, servers))
}

/// The seed's faults, one after the other, while the load lasts.
async fn inject_faults(
    chaos: &mut Chaos,
    seed: u64,
    duration: u64,
    started: Instant,
) -> Vec<Injected> {
    let load = Duration::from_secs(duration);
    // More than can fit: the load's end stops the schedule.
    let rounds = (duration / 60).max(1) as usize * 2;
    let mut injected = Vec::new();
    for step in faults::schedule(seed, rounds, INSTANCES, NATS_NODES) {
        if started.elapsed() + Duration::from_millis(step.gap_ms) >= load {
            break;
        }
        tokio::time::sleep(Duration::from_millis(step.gap_ms)).await;
        let done = chaos.inject(step, started).await;
        println!(
            "chaos: {:>6.1}s {} {:?}: recovered after {:?} s {} {}",
            done.at_s,
            done.fault.name(),
            done.target,
            done.recovered_s,
            done.note,
            done.problem.as_deref().unwrap_or_default()
        );
        injected.push(done);
    }
    tokio::time::sleep(load.saturating_sub(started.elapsed())).await;
    injected
}

/// Once the deployment has settled: every check, the read models last (they
/// need the instances stopped).
async fn verify_all(
    chaos: &mut Chaos,
    sockets: Sockets,
    injected: &[Injected],
    bin: &Path,
) -> anyhow::Result<(verify::Findings, Vec<(Channel, Log)>)> {
    let mut findings = verify::Findings {
        faults: injected.iter().filter_map(Injected::violation).collect(),
        ..Default::default()
    };
    let db = chaos.pg.connect(DATABASE).await?;
    if let Err(e) = verify::settle(&db, &sockets.clients).await {
        findings
            .faults
            .push(format!("the deployment did not settle: {e:#}"));
    }
    let logs = sockets.stop().await;
    println!("chaos: verifying");
    let outcomes = chaos
        .world
        .outcomes
        .lock()
        .map(|o| o.clone())
        .unwrap_or_default();
    findings.commands = verify::commands(&db, &outcomes).await?;
    findings.chain = verify::chain(bin, &chaos.pg.url(DATABASE)).await?;
    findings.sockets = verify::sockets(&logs, &verify::heads(&db).await?);
    findings.stream = verify::stream(&db, &chaos.nats.url(), STREAM).await?;
    chaos.servers.stop_all().await?;
    // The copy needs the database without sessions.
    drop(db);
    let admin = chaos.pg.connect("postgres").await?;
    let copy = verify::rebuild_copy(&admin, bin, |d| chaos.pg.url(d), DATABASE).await?;
    let rebuilt = chaos.pg.connect(&copy).await?;
    let db = chaos.pg.connect(DATABASE).await?;
    findings.read_models = verify::read_models(&db, &rebuilt).await?;
    Ok((findings, logs))
}
