//! Leadership by advisory lock: the relay and the projection workers each
//! run as a single active instance per database. The leader holds a
//! PostgreSQL session advisory lock on a dedicated connection; other
//! instances wait as standbys and take over within [`STANDBY_POLL`] when the
//! leader's connection closes (its process died). Order matters to both
//! roles, so one writer at a time is the design, not a limitation.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use deadpool_postgres::{Object, Pool};

/// How often a standby tries to become the leader.
pub const STANDBY_POLL: Duration = Duration::from_secs(1);

/// How long a confirmed leadership is taken for granted. Leaders check on
/// every batch; a round trip each time would cost more than some batches.
/// Two leaders overlapping for this long is harmless: the projections'
/// checkpoint locks and the relay's expected-last-sequence publishes keep
/// them in turn.
const CONFIRMED_FOR: Duration = Duration::from_secs(1);

/// A held leadership: the lock lives as long as this connection.
pub struct Leadership {
    connection: Option<Object>,
    /// When the connection last answered.
    confirmed: Mutex<Instant>,
    /// `ticketflow_leader{role}`: 1 while this is held.
    leading: metrics::Gauge,
}

/// A stable lock key for a role name (FNV-1a; any fixed hash would do).
fn lock_key(role: &str) -> i64 {
    let hash = role.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    hash as i64
}

impl Leadership {
    /// Becomes the leader of `role` if nobody is.
    pub async fn try_acquire(pool: &Pool, role: &str) -> Option<Self> {
        let leading = crate::metrics::leader(role);
        // Whatever happens next, this process does not lead until it does.
        leading.set(0.0);
        let connection = pool.get().await.ok()?;
        let row = connection
            .query_one("SELECT pg_try_advisory_lock($1)", &[&lock_key(role)])
            .await
            .ok()?;
        let leader = Self {
            connection: Some(connection),
            confirmed: Mutex::new(Instant::now()),
            leading,
        };
        // On false, dropping `leader` closes the connection: harmless.
        let won = row.get::<_, bool>(0).then_some(leader)?;
        won.leading.set(1.0);
        Some(won)
    }

    /// Whether the lock is still held: false once its connection is gone
    /// (closed, or silent when asked, at most [`CONFIRMED_FOR`] ago).
    pub async fn alive(&self) -> bool {
        let Some(connection) = &self.connection else {
            return false;
        };
        if connection.is_closed() {
            return false;
        }
        let recently = |at: &Instant| at.elapsed() < CONFIRMED_FOR;
        if self.confirmed.lock().is_ok_and(|at| recently(&at)) {
            return true;
        }
        let answered = connection.simple_query("SELECT 1").await.is_ok();
        if answered {
            if let Ok(mut at) = self.confirmed.lock() {
                *at = Instant::now();
            }
        }
        answered
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.leading.set(0.0);
        // Back in the pool the session would keep its lock: detach the
        // connection so dropping it closes it and PostgreSQL releases the lock.
        if let Some(connection) = self.connection.take() {
            drop(Object::take(connection));
        }
    }
}
