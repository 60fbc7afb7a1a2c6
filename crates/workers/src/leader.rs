//! Leadership by advisory lock.

use deadpool_postgres::{Object, Pool};

/// A held leadership: the lock lives as long as this connection.
pub struct Leadership {
    connection: Option<Object>,
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
        let connection = pool.get().await.ok()?;
        let row = connection
            .query_one("SELECT pg_try_advisory_lock($1)", &[&lock_key(role)])
            .await
            .ok()?;
        let leader = Self {
            connection: Some(connection),
        };
        // On false, dropping `leader` closes the connection: harmless.
        row.get::<_, bool>(0).then_some(leader)
    }

    /// Whether the lock is still held: false once its connection is gone.
    pub async fn alive(&self) -> bool {
        match &self.connection {
            Some(c) => c.simple_query("SELECT 1").await.is_ok(),
            None => false,
        }
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        // Back in the pool the session would keep its lock: detach the
        // connection so dropping it closes it and PostgreSQL releases the lock.
        if let Some(connection) = self.connection.take() {
            drop(Object::take(connection));
        }
    }
}
