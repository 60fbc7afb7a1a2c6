//! The run's report: JSON for machines, a markdown table for people.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use serde::Serialize;

use crate::faults::Injected;
use crate::load::{Answer, Outcome};
use crate::sockets::{Channel, Log};
use crate::verify::Findings;
use crate::Args;

#[derive(Debug, Serialize)]
pub struct Report {
    pub seed: u64,
    /// What `ticketflow --version` said.
    pub server: String,
    pub load_s: u64,
    pub users: usize,
    pub sockets: usize,
    /// Commands by kind and outcome, e.g. "create applied".
    pub commands: BTreeMap<String, usize>,
    pub command_attempts: u64,
    /// Seq-carrying messages received over all sockets.
    pub deliveries: u64,
    pub connects: u64,
    /// Connections after each socket's first.
    pub reconnects: u64,
    pub failed_connects: u64,
    pub dropped: u64,
    pub closes: BTreeMap<u16, u64>,
    pub resyncs: u64,
    pub faults_by_kind: BTreeMap<&'static str, usize>,
    pub faults: Vec<Injected>,
    pub findings: Findings,
}

impl Report {
    pub fn new(
        seed: u64,
        server: String,
        args: &Args,
        outcomes: &[Outcome],
        logs: &[(Channel, Log)],
        faults: Vec<Injected>,
        findings: Findings,
    ) -> Self {
        let mut commands: BTreeMap<String, usize> = BTreeMap::new();
        for o in outcomes {
            let answer = match o.answer {
                Answer::Applied(_) => "applied".to_string(),
                Answer::Refused(status) => format!("refused {status}"),
                Answer::Unknown => "unknown".to_string(),
            };
            let kind = format!("{:?} {answer}", o.kind).to_lowercase();
            *commands.entry(kind).or_default() += 1;
        }
        let mut closes = BTreeMap::new();
        for (code, n) in logs.iter().flat_map(|(_, l)| &l.closes) {
            *closes.entry(*code).or_default() += u64::from(*n);
        }
        let mut faults_by_kind = BTreeMap::new();
        for f in &faults {
            *faults_by_kind.entry(f.fault.name()).or_default() += 1;
        }
        let sum = |f: fn(&Log) -> u64| logs.iter().map(|(_, l)| f(l)).sum();
        Self {
            seed,
            server,
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
            faults_by_kind,
            faults,
            findings,
        }
    }

    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("chaos.json"), serde_json::to_string_pretty(self)?)?;
        std::fs::write(dir.join("chaos.md"), self.markdown())?;
        Ok(())
    }

    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "# Chaos run, seed {}\n\n{}: {} s of load, {} users, {} sockets; {} violation(s).\n",
            self.seed,
            self.server,
            self.load_s,
            self.users,
            self.sockets,
            self.findings.total()
        );
        let _ = writeln!(md, "| commands | count |\n|---|---:|");
        for (what, n) in &self.commands {
            let _ = writeln!(md, "| {what} | {n} |");
        }
        let _ = writeln!(
            md,
            "| attempts (with retries) | {} |\n",
            self.command_attempts
        );
        let _ = writeln!(
            md,
            "| sockets | count |\n|---|---:|\n| deliveries (seq messages) | {} |\n| connections | {} |\n| reconnections | {} |\n\
             | failed connection attempts | {} |\n| dropped without close | {} |\n| resync_required | {} |",
            self.deliveries,
            self.connects,
            self.reconnects,
            self.failed_connects,
            self.dropped,
            self.resyncs
        );
        for (code, n) in &self.closes {
            let _ = writeln!(md, "| closed with {code} | {n} |");
        }
        let _ = writeln!(md, "\n| faults injected | count |\n|---|---:|");
        for (kind, n) in &self.faults_by_kind {
            let _ = writeln!(md, "| {kind} | {n} |");
        }
        let _ = writeln!(
            md,
            "\n| # | at (s) | fault | target | down (s) | recovered after (s) | note |\n|---:|---:|---|---:|---:|---:|---|"
        );
        for (i, f) in self.faults.iter().enumerate() {
            let _ = writeln!(
                md,
                "| {} | {:.1} | {} | {} | {:.1} | {} | {} |",
                i + 1,
                f.at_s,
                f.fault.name(),
                f.target.map(|t| (t + 1).to_string()).unwrap_or_default(),
                f.down_s,
                f.recovered_s
                    .map(|r| format!("{r:.1}"))
                    .unwrap_or("not recovered".into()),
                f.problem.as_deref().unwrap_or(&f.note)
            );
        }
        let _ = writeln!(md, "\n## Violations\n");
        let checks = [
            ("commands", &self.findings.commands),
            ("chain", &self.findings.chain),
            ("stream", &self.findings.stream),
            ("read models", &self.findings.read_models),
            ("sockets", &self.findings.sockets),
            ("faults", &self.findings.faults),
        ];
        for (check, found) in checks {
            let _ = writeln!(md, "- {check}: {}", found.len());
            for v in found.iter().take(20) {
                let _ = writeln!(md, "  - {v}");
            }
        }
        md
    }
}
