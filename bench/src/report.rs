//! The results: every figure against its target, as Markdown and JSON.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use crate::machine::Machine;
use crate::scenario::{baseline, board_as_of, commands, fanout, rebuild, replay, soak};

#[derive(Debug, Serialize)]
pub struct Report {
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub quick: bool,
    pub machine: Machine,
    pub baseline: Option<baseline::Outcome>,
    pub commands: Option<commands::Outcome>,
    pub fanout: Option<fanout::Outcome>,
    pub light: Option<fanout::Outcome>,
    pub replay: Option<replay::Outcome>,
    pub rebuild: Option<rebuild::Outcome>,
    pub board_as_of: Option<board_as_of::Outcome>,
    pub soak: Option<soak::Outcome>,
}

/// One figure, its target, and whether it met it.
#[derive(Debug, Serialize)]
pub struct Check {
    pub scenario: &'static str,
    pub metric: &'static str,
    pub figure: String,
    pub target: String,
    pub met: bool,
}

fn at_least(scenario: &'static str, metric: &'static str, figure: f64, target: f64) -> Check {
    Check {
        scenario,
        metric,
        figure: format!("{figure:.1}"),
        target: format!("≥ {target}"),
        met: figure >= target,
    }
}

fn at_most(scenario: &'static str, metric: &'static str, figure: f64, target: f64) -> Check {
    Check {
        scenario,
        metric,
        figure: format!("{figure:.2}"),
        target: format!("≤ {target}"),
        met: figure <= target,
    }
}

/// A figure that must stay within 5% of its level after the warm-up.
fn flat(scenario: &'static str, metric: &'static str, trend: &soak::Trend) -> Check {
    Check {
        scenario,
        metric,
        figure: format!(
            "{:+.1}% ({} → {}, max {})",
            trend.drift_pct, trend.first, trend.last, trend.max
        ),
        target: "drift within ±5%".into(),
        met: trend.drift_pct.abs() <= 5.0,
    }
}

impl Report {
    pub fn checks(&self) -> Vec<Check> {
        let mut checks = Vec::new();
        if let Some(c) = &self.commands {
            checks.push(at_least("commands", "commands/s", c.commands_per_s, 5000.0));
            checks.push(at_most("commands", "p99 ms", c.latency.p99_ms, 25.0));
            if let Some(b) = &self.baseline {
                let ratio = c.commands_per_s / b.tps;
                let mut check = at_least("commands", "× pgbench TPS", ratio, 0.4);
                check.figure = format!("{ratio:.2}");
                checks.push(check);
            }
        }
        if let Some(f) = &self.fanout {
            checks.push(at_most("fan-out", "lost", f.lost as f64, 0.0));
            checks.push(at_most("fan-out", "duplicated", f.duplicated as f64, 0.0));
            checks.push(at_least(
                "fan-out",
                "deliveries/s",
                f.deliveries_per_s,
                50_000.0,
            ));
            checks.push(at_most(
                "fan-out",
                "p99 accepted→delivered ms",
                f.delivery_latency.p99_ms,
                50.0,
            ));
            let added_mib = f
                .rss_idle_sockets_kib
                .saturating_sub(f.rss_before_sockets_kib) as f64
                / 1024.0;
            checks.push(at_most(
                "memory",
                "MiB added by idle sockets",
                added_mib,
                100.0,
            ));
            checks.push(at_most(
                "memory",
                "KiB per idle socket",
                f.kib_per_socket(),
                10.0,
            ));
        }
        if let Some(l) = &self.light {
            checks.push(at_most("light load", "lost", l.lost as f64, 0.0));
            checks.push(at_most(
                "light load",
                "duplicated",
                l.duplicated as f64,
                0.0,
            ));
            checks.push(at_most(
                "light load",
                "p99 accepted→delivered ms",
                l.delivery_latency.p99_ms,
                10.0,
            ));
        }
        if let Some(r) = &self.replay {
            checks.push(Check {
                scenario: "replay",
                metric: "all missed, in order, then replay_complete",
                figure: format!("{} of {}", r.replayed, r.spec.missed),
                target: "all".into(),
                met: r.complete_and_in_order,
            });
            checks.push(at_most(
                "replay",
                "ms to replay_complete",
                r.elapsed_ms,
                1000.0,
            ));
        }
        if let Some(r) = &self.rebuild {
            checks.push(at_least(
                "rebuild",
                "events/s (all read models)",
                r.events_per_s,
                50_000.0,
            ));
        }
        if let Some(b) = &self.board_as_of {
            checks.push(at_most(
                "board as of",
                "p99 ms, slowest of early/middle/head × limit 50/200",
                b.worst_p99_ms,
                200.0,
            ));
        }
        if let Some(s) = &self.soak {
            checks.push(at_most("soak", "lost across resumes", s.lost as f64, 0.0));
            checks.push(at_most(
                "soak",
                "duplicated across resumes",
                s.duplicated as f64,
                0.0,
            ));
            checks.push(at_most(
                "soak",
                "resyncs and failed resumes",
                (s.resyncs + s.failed_subscribers) as f64,
                0.0,
            ));
            checks.push(flat("soak", "RSS KiB after warm-up", &s.rss_kib));
            checks.push(flat("soak", "open fds after warm-up", &s.open_fds));
        }
        checks
    }

    pub fn markdown(&self) -> String {
        let m = &self.machine;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# ticketflow benchmark, {}",
            self.started_at.format("%Y-%m-%d %H:%M UTC")
        );
        let _ = writeln!(out);
        let dirty = if m.git_dirty {
            " (with uncommitted changes)"
        } else {
            ""
        };
        let _ = writeln!(out, "- server built from: `{}`", m.server_revision);
        let _ = writeln!(out, "- bench run from: `{}`{dirty}", m.git_revision);
        let _ = writeln!(
            out,
            "- machine: {} cores ({}), {:.1} GiB, Linux {}; PostgreSQL {}, nats-server {}; server, services and load generator on this one machine",
            m.cores, m.cpu, m.memory_gib, m.kernel, m.postgres, m.nats_server
        );
        if self.quick {
            let _ = writeln!(out, "- **quick mode**: sizes scaled down to keep the tool working; the targets apply to full runs only");
        }
        if let Some(b) = &self.baseline {
            let _ = writeln!(
                out,
                "- baseline: `pgbench -c {}` single-row inserts for {} s: {:.0} TPS",
                b.clients, b.seconds, b.tps
            );
        }
        let _ = writeln!(
            out,
            "\n| scenario | metric | result | target | met |\n|---|---|---|---|---|"
        );
        for c in self.checks() {
            let met = if c.met { "yes" } else { "**no**" };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {met} |",
                c.scenario, c.metric, c.figure, c.target
            );
        }
        if let Some(name) = self.fanout_metrics_file() {
            let _ = writeln!(
                out,
                "\nThe server's `/metrics` at the end of the fan-out, every delivery in: [`{name}`]({name})."
            );
        }
        if let Some(b) = &self.board_as_of {
            b.markdown(&mut out);
        }
        let _ = writeln!(out, "\n## Details\n\n```json\n{}\n```", self.details_json());
        out
    }

    /// `<stamp>-<revision>`: the name of this run's files.
    fn stem(&self) -> String {
        let revision: String = self.machine.server_revision.chars().take(8).collect();
        format!("{}-{revision}", self.started_at.format("%Y%m%dT%H%M%SZ"))
    }

    /// The file the fan-out's scrape of `/metrics` goes to, if it ran.
    fn fanout_metrics_file(&self) -> Option<String> {
        let scraped = self.fanout.as_ref().is_some_and(|f| !f.metrics.is_empty());
        scraped.then(|| format!("{}-metrics-fanout.txt", self.stem()))
    }

    fn details_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("unserialisable: {e}"))
    }

    /// Writes `<stamp>-<revision>.md` and `.json` under `dir`, named by the
    /// measured server's revision, and the fan-out's `/metrics` scrape
    /// (`<stamp>-<revision>-metrics-fanout.txt`); returns the Markdown path.
    pub fn write(&self, dir: &Path) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        if let (Some(name), Some(fanout)) = (self.fanout_metrics_file(), &self.fanout) {
            let path = dir.join(name);
            std::fs::write(&path, &fanout.metrics)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        let stem = self.stem();
        let markdown = dir.join(format!("{stem}.md"));
        std::fs::write(&markdown, self.markdown())
            .with_context(|| format!("writing {}", markdown.display()))?;
        let json = serde_json::json!({ "report": self, "checks": self.checks() });
        let path = dir.join(format!("{stem}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(markdown)
    }
}
