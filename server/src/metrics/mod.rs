//! `GET /metrics`: the process's metrics in the Prometheus text format.
//!
//! Every crate records through the `metrics` facade (`ticketflow_store::metrics`,
//! `ticketflow_nats::metrics`, `ticketflow_app::command_metrics`,
//! `ticketflow_realtime::metrics`, [`http`] here); [`Metrics::install`] puts
//! the Prometheus recorder behind it, once per process, before anything
//! records. Gauges of state that is simply there to read (the log's head,
//! each projection's checkpoint, the connection pool, NATS) are read at each
//! scrape ([`sample`]) rather than kept up to date on every change.
//!
//! Served on the main port next to the web app (`METRICS_ADDR` moves it to a
//! listener of its own, `METRICS_ENABLED=false` turns it off: 404). Every
//! name is in [`catalogue`], with its help text.

pub mod catalogue;
pub mod http;
mod sample;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::anyhow;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::Backend;

/// How often histograms are drained into their buckets between scrapes, so
/// their samples never pile up in memory when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Buckets of every `_seconds` histogram: from half a millisecond (an
/// append in a group commit) to ten seconds (a request stuck behind a
/// database that stopped answering, 5 s).
const SECONDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Writes per group commit: powers of two up to the batch limit (256).
const WRITES: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
/// Messages per replay, up to the default `REPLAY_LIMIT` (100,000).
const REPLAYED: [f64; 7] = [0.0, 10.0, 100.0, 1_000.0, 10_000.0, 50_000.0, 100_000.0];

/// Metrics options of `ticketflow serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct MetricsArgs {
    /// Serve `GET /metrics` (Prometheus text format); false: no recorder, 404.
    #[arg(
        long = "metrics-enabled",
        env = "METRICS_ENABLED",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new(),
    )]
    pub enabled: bool,
    /// Serve `/metrics` on this address instead of the main one (e.g.
    /// 0.0.0.0:9100, for a scraper that should not reach the API).
    #[arg(long = "metrics-addr", env = "METRICS_ADDR")]
    pub addr: Option<SocketAddr>,
}

/// The process's Prometheus recorder.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

/// The recorder is the `metrics` facade's global one: one per process,
/// installed by the first call of [`Metrics::install`].
static INSTALLED: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

impl Metrics {
    /// Installs the Prometheus recorder as the process's recorder, on the
    /// first call; later calls return the same one. Call it before anything
    /// records: a handle registered earlier (a gateway's, say) would stay
    /// tied to the no-op recorder the facade starts with.
    pub fn install() -> anyhow::Result<Self> {
        let installed = INSTALLED.get_or_init(|| {
            let handle = builder()
                .and_then(PrometheusBuilder::install_recorder)
                .map_err(|e| e.to_string())?;
            catalogue::describe();
            start_upkeep(handle.clone());
            Ok(handle)
        });
        match installed {
            Ok(handle) => Ok(Self {
                handle: handle.clone(),
            }),
            Err(e) => Err(anyhow!("installing the metrics recorder: {e}")),
        }
    }

    /// `GET /metrics`, reading `backend`'s state at each scrape.
    pub fn routes(&self, backend: &Backend) -> Router {
        let scrape = Scrape {
            handle: self.handle.clone(),
            backend: backend.clone(),
        };
        operations().with_state(scrape).split_for_parts().0
    }
}

/// The route, registered with its `#[utoipa::path]`.
fn operations() -> OpenApiRouter<Scrape> {
    OpenApiRouter::new().routes(routes!(render))
}

/// The OpenAPI description of `/metrics` (wherever it is served).
pub fn openapi() -> utoipa::openapi::OpenApi {
    operations().into_openapi()
}

/// Histograms as histograms (buckets, not summaries), so that quantiles
/// can be computed across instances.
fn builder() -> Result<PrometheusBuilder, metrics_exporter_prometheus::BuildError> {
    use ticketflow_realtime::metrics::REPLAY_MESSAGES;
    use ticketflow_store::metrics::GROUP_COMMIT_WRITES;
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS)?
        .set_buckets_for_metric(Matcher::Full(GROUP_COMMIT_WRITES.into()), &WRITES)?
        .set_buckets_for_metric(Matcher::Full(REPLAY_MESSAGES.into()), &REPLAYED)
}

/// A thread of its own: the recorder outlives any one Tokio runtime (each
/// test has its own).
fn start_upkeep(handle: PrometheusHandle) {
    let started = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        });
    if let Err(e) = started {
        tracing::warn!(error = %e, "cannot start the metrics upkeep; scrapes drain histograms");
    }
}

#[derive(Clone)]
struct Scrape {
    handle: PrometheusHandle,
    backend: Backend,
}

/// The process's metrics in the Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((
        status = 200,
        description = "Prometheus text exposition format 0.0.4",
        body = String,
        content_type = "text/plain",
    ))
)]
async fn render(State(scrape): State<Scrape>) -> impl IntoResponse {
    sample::record(&scrape.backend);
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    (
        [(header::CONTENT_TYPE, content_type)],
        scrape.handle.render(),
    )
}
