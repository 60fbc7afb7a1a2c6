//! The process's log: `RUST_LOG` picks what is written, `LOG_FORMAT` how —
//! lines for a terminal (`text`) or one JSON object per line (`json`) for a
//! log pipeline, each with the fields of the spans it happened in (a
//! request's `request_id`, a socket's `connection_id`).

use anyhow::Context;
use clap::{Args, ValueEnum};
use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields`
    /// (with `message`), `span` and `spans` (the fields of each span).
    Json,
}

#[derive(Args)]
pub struct LogArgs {
    /// How log lines are written: text or json.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        ignore_case = true,
        default_value_t = LogFormat::Text,
        global = true
    )]
    log_format: LogFormat,
}

/// The one log target that writes secrets (hashes, but offline-crackable
/// ones), held below the level it writes them at.
const QUIET_STATEMENT_PARAMETERS: &str = "tokio_postgres::query=info";

impl LogArgs {
    /// Installs the process's subscriber.
    pub fn init(&self) -> anyhow::Result<()> {
        let filter = EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| "info,tower_http=info".into())
            // Whatever RUST_LOG asks: tokio-postgres logs every statement's
            // parameters at DEBUG, password and refresh-token hashes among them.
            .add_directive(QUIET_STATEMENT_PARAMETERS.parse()?);
        let lines = tracing_subscriber::fmt().with_env_filter(filter);
        let installed = match self.log_format {
            LogFormat::Text => lines.try_init(),
            LogFormat::Json => lines.json().try_init(),
        };
        installed
            .map_err(|e| anyhow::anyhow!(e))
            .context("installing the log subscriber")
    }
}
