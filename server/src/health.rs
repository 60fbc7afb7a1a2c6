//! `GET /healthz` and `GET /readyz`, outside `/api`: whether the process is
//! up, and whether a load balancer should send it traffic.
//!
//! Liveness answers from memory: 200 `{"status":"ok"}` whenever the process
//! serves HTTP at all, draining included (restarting a draining process
//! would cut its drain short). Readiness asks what the process's roles
//! need: the store answers (PostgreSQL, or the embedded SQLite files), the
//! broker is connected (NATS, for the roles that use it), and the log's
//! followers this process runs are at most `READY_MAX_LAG` events behind its
//! head (the relay; each projection). Every check is bounded by
//! [`CHECK_WITHIN`], so a hung database makes readiness answer 503, not hang.
//! Once the process drains it answers 503 `draining` at once, checking
//! nothing.
//!
//! The lag is the deployment's, read from the database: every instance
//! running a role agrees on it, whichever of them leads.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Serialize;
use tokio::time::Instant;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{Backend, Roles};

/// How long readiness waits for any one dependency.
pub const CHECK_WITHIN: Duration = Duration::from_secs(1);

/// The checkpoint the relay records (see `ticketflow_nats::relay`).
const RELAY: &str = "relay";

/// What readiness looks at: the process's storage and broker, its roles,
/// and how far behind the log its workers may be.
struct Probe {
    backend: Backend,
    roles: Roles,
    max_lag: i64,
}

/// The health routes of a process running `roles` on `backend`.
pub(crate) fn routes(backend: &Backend, roles: Roles, max_lag: i64) -> Router {
    let probe = Probe {
        backend: backend.clone(),
        roles,
        max_lag,
    };
    operations().with_state(Arc::new(probe)).split_for_parts().0
}

/// The routes, each registered with its `#[utoipa::path]`.
fn operations() -> OpenApiRouter<Arc<Probe>> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// The OpenAPI description of `/healthz` and `/readyz`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    operations().into_openapi()
}

#[derive(Serialize, ToSchema)]
struct Alive {
    /// Always `ok`.
    #[schema(value_type = String, pattern = "^ok$")]
    status: &'static str,
}

/// The process is up (200 whenever it serves HTTP, draining included).
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "Up", body = Alive))
)]
async fn healthz() -> Json<Alive> {
    Json(Alive { status: "ok" })
}

/// Whether this process's dependencies answer and, for the roles it runs,
/// its lag is under the threshold; each check named.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready: every check passed", body = Report),
        (status = 503, description = "Not ready, or draining for a shutdown", body = Report),
    )
)]
async fn readyz(State(probe): State<Arc<Probe>>) -> Response {
    let report = probe.report().await;
    let status = if report.status == READY {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report)).into_response()
}

const READY: &str = "ready";
const NOT_READY: &str = "not_ready";
const DRAINING: &str = "draining";

/// The body of `/readyz`: the verdict and every check it rests on, by name.
#[derive(Serialize, ToSchema)]
struct Report {
    /// `ready`, `not_ready` or `draining`.
    #[schema(value_type = String, pattern = "^(ready|not_ready|draining)$")]
    status: &'static str,
    /// Each check by name: the store (`postgres`, `sqlite`), the broker
    /// (`nats`, `broker`), `relay_lag`, `projection:<name>`.
    checks: BTreeMap<String, Check>,
}

/// One check: whether it passed, and what it measured.
#[derive(Serialize, ToSchema, Default, Debug, PartialEq)]
struct Check {
    ok: bool,
    /// How long the store took to answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_ms: Option<u64>,
    /// Events between the log's head and where the role has got.
    #[serde(skip_serializing_if = "Option::is_none")]
    lag: Option<i64>,
    /// The most `lag` may be (`READY_MAX_LAG`).
    #[serde(skip_serializing_if = "Option::is_none")]
    threshold: Option<i64>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Check {
    fn passed() -> Self {
        Self {
            ok: true,
            ..Self::default()
        }
    }

    fn failed(error: impl Into<String>) -> Self {
        Self {
            error: Some(error.into()),
            ..Self::default()
        }
    }
}

/// The log's head and every recorded checkpoint, as the store gave them.
struct Positions {
    head: i64,
    checkpoints: Vec<(String, i64)>,
}

impl Probe {
    async fn report(&self) -> Report {
        let mut checks = BTreeMap::new();
        if self.backend.drain().has_begun() {
            return Report {
                status: DRAINING,
                checks,
            };
        }
        let (store, positions) = self.store().await;
        checks.insert(self.store_name().to_string(), store);
        if let Some((name, check)) = self.broker() {
            checks.insert(name.to_string(), check);
        }
        for (name, checkpoint) in self.followers() {
            let check = lag(positions.as_ref(), checkpoint, self.max_lag);
            checks.insert(name, check);
        }
        let ready = checks.values().all(|check| check.ok);
        Report {
            status: if ready { READY } else { NOT_READY },
            checks,
        }
    }

    fn store_name(&self) -> &'static str {
        if self.backend.is_embedded() {
            "sqlite"
        } else {
            "postgres"
        }
    }

    /// The store's check, and the positions it read (the lag checks' input).
    async fn store(&self) -> (Check, Option<Positions>) {
        let started = Instant::now();
        let read = async {
            let head = self.backend.events.head_position().await?;
            let checkpoints = if self.followers().is_empty() {
                Vec::new()
            } else {
                self.backend.reads.checkpoints().await?
            };
            Ok::<_, ticketflow_store::StoreError>(Positions { head, checkpoints })
        };
        match tokio::time::timeout(CHECK_WITHIN, read).await {
            Ok(Ok(positions)) => {
                let latency = started.elapsed().as_millis();
                let check = Check {
                    latency_ms: Some(u64::try_from(latency).unwrap_or(u64::MAX)),
                    ..Check::passed()
                };
                (check, Some(positions))
            }
            Ok(Err(e)) => {
                // The details are the operator's (the store logs them too),
                // not every prober's.
                tracing::debug!(error = %e, "readiness: the store failed");
                (Check::failed("unavailable"), None)
            }
            Err(_) => {
                let waited = CHECK_WITHIN.as_millis();
                (Check::failed(format!("no answer within {waited} ms")), None)
            }
        }
    }

    /// The broker's check, for the roles that need one (the API alone
    /// serves commands without it).
    fn broker(&self) -> Option<(&'static str, Check)> {
        let roles = self.roles;
        if !(roles.relay || roles.projections || roles.realtime) {
            return None;
        }
        let broker = self.backend.broker.as_ref()?;
        let name = if self.backend.is_embedded() {
            "broker"
        } else {
            "nats"
        };
        let check = if broker.pubsub.connected() {
            Check::passed()
        } else {
            Check::failed("not connected")
        };
        Some((name, check))
    }

    /// The lag checks this process's roles call for, each with the
    /// checkpoint it compares with the head.
    fn followers(&self) -> Vec<(String, &'static str)> {
        let mut followers = Vec::new();
        // The embedded relay only echoes events in process: nothing to lag.
        if self.roles.relay && !self.backend.is_embedded() {
            followers.push(("relay_lag".to_string(), RELAY));
        }
        if self.roles.projections {
            for name in ticketflow_projections::names() {
                followers.push((format!("projection:{name}"), name));
            }
        }
        followers
    }
}

/// How far `checkpoint` is behind the head, against `max_lag`. A checkpoint
/// never recorded is 0: nothing applied yet.
fn lag(positions: Option<&Positions>, checkpoint: &str, max_lag: i64) -> Check {
    let Some(positions) = positions else {
        return Check {
            threshold: Some(max_lag),
            ..Check::failed("store unavailable")
        };
    };
    let at = positions
        .checkpoints
        .iter()
        .find(|(name, _)| name == checkpoint)
        .map_or(0, |(_, position)| *position);
    let lag = (positions.head - at).max(0);
    Check {
        ok: lag <= max_lag,
        lag: Some(lag),
        threshold: Some(max_lag),
        ..Check::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn positions(head: i64, checkpoints: &[(&str, i64)]) -> Positions {
        Positions {
            head,
            checkpoints: checkpoints
                .iter()
                .map(|(name, at)| (name.to_string(), *at))
                .collect(),
        }
    }

    #[test]
    fn lag_is_the_distance_to_the_head_against_the_threshold() {
        let at = positions(120, &[("tickets", 100), ("relay", 120)]);
        let behind = lag(Some(&at), "tickets", 10);
        assert_eq!(
            (behind.ok, behind.lag, behind.threshold),
            (false, Some(20), Some(10))
        );
        let level = lag(Some(&at), "tickets", 20);
        assert!(level.ok);
        assert_eq!(lag(Some(&at), "relay", 0).lag, Some(0));
    }

    #[test]
    fn a_checkpoint_never_recorded_is_behind_by_the_whole_log() {
        let check = lag(Some(&positions(7, &[])), "comments", 10_000);
        assert_eq!((check.ok, check.lag), (true, Some(7)));
        assert!(!lag(Some(&positions(7, &[])), "comments", 6).ok);
    }

    #[test]
    fn without_positions_every_lag_check_fails() {
        let check = lag(None, "tickets", 10);
        assert!(!check.ok);
        assert_eq!(check.error.as_deref(), Some("store unavailable"));
    }

    #[test]
    fn a_check_serialises_only_what_it_measured() {
        let check = Check {
            latency_ms: Some(3),
            ..Check::passed()
        };
        let json = serde_json::to_value(&check).unwrap();
        assert_eq!(json, serde_json::json!({ "ok": true, "latency_ms": 3 }));
    }
}
