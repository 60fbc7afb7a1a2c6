//! What the run was measured on: the machine, its services and the code.

use std::path::Path;

use anyhow::Context;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    pub postgres: String,
    pub nats_server: String,
    /// The checkout the bench ran from.
    pub git_revision: String,
    /// Whether the working tree differed from the revision.
    pub git_dirty: bool,
    /// The revision the measured server binary was built from (its
    /// `--version`), which differs from the checkout's with `--server-bin`.
    pub server_revision: String,
}

pub async fn describe(
    admin_url: &str,
    nats_url: &str,
    server_bin: &Path,
) -> anyhow::Result<Machine> {
    let cpuinfo = read("/proc/cpuinfo");
    let meminfo = read("/proc/meminfo");
    let postgres: String = crate::server::connect(admin_url)
        .await?
        .query_one("SHOW server_version", &[])
        .await
        .context("asking PostgreSQL its version")?
        .get(0);
    let nats_server = ticketflow_nats::server_version(nats_url)
        .await
        .with_context(|| format!("connecting to NATS at {nats_url}"))?;
    Ok(Machine {
        cpu: field(&cpuinfo, "model name")
            .unwrap_or("unknown")
            .to_string(),
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        memory_gib: field(&meminfo, "MemTotal")
            .and_then(|v| v.trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kib| kib / (1024.0 * 1024.0)),
        kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
        postgres,
        nats_server,
        git_revision: git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into()),
        git_dirty: git(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty()),
        server_revision: server_revision(server_bin).unwrap_or_else(|| "unknown".into()),
    })
}

/// The revision in `ticketflow --version`'s "ticketflow 0.1.0 (<revision>)".
fn server_revision(server_bin: &Path) -> Option<String> {
    let out = std::process::Command::new(server_bin)
        .arg("--version")
        .output()
        .ok()?;
    let version = String::from_utf8_lossy(&out.stdout);
    let (_, rest) = version.split_once('(')?;
    let (revision, _) = rest.split_once(')')?;
    Some(revision.to_string())
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The value of `name` in a `name : value` listing such as /proc/cpuinfo.
fn field<'a>(listing: &'a str, name: &str) -> Option<&'a str> {
    listing.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == name).then_some(value.trim())
    })
}

fn git(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
