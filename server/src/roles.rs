//! The roles a process runs (`--roles`): which doors it opens and which
//! workers it runs, and so what its readiness checks.

/// What one process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// The HTTP API under `/api` (and the web app).
    pub api: bool,
    /// The outbox relay (PostgreSQL + NATS only; one instance leads).
    pub relay: bool,
    /// The projection workers (one instance leads).
    pub projections: bool,
    /// The WebSocket gateway.
    pub realtime: bool,
}

impl Roles {
    /// Every role: `serve` without `--roles`, and every embedded process.
    pub const ALL: Self = Self {
        api: true,
        relay: true,
        projections: true,
        realtime: true,
    };

    /// Whether the process answers on HTTP beyond its health endpoints.
    pub fn has_doors(&self) -> bool {
        self.api || self.realtime
    }
}
