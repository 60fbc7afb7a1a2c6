//! Test support for ticketflow's integration tests.
//!
//! [`TestDb`] creates a uniquely named database on the server named by
//! `TEST_DATABASE_URL` (default: local PostgreSQL as user postgres) and drops
//! it afterwards, so tests never see each other's data and may run in
//! parallel. [`TestServer`] runs the real router on a real TCP socket against
//! such a database; tests talk to it with a real HTTP client.

//!
//! One crate, split by features so a lower crate's tests build only what
//! they need: the default is the database and event fixtures (for `store`
//! and up); `nats` adds a nats-server of the test's own; `server` adds the
//! whole server on a real socket and its HTTP and WebSocket clients.

pub mod fixtures;
#[cfg(feature = "nats")]
mod nats;
pub mod seed;
#[cfg(feature = "server")]
mod server;

use ticketflow_store::pg::PgStore;

#[cfg(feature = "nats")]
pub use nats::NatsServer;
#[cfg(feature = "server")]
pub use server::*;

pub(crate) fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A database of one's own, dropped when this value is.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let admin = admin_url();
        let name = format!("tf_test_{}", uuid::Uuid::new_v4().simple());
        let client = connect(&admin).await;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        let url = match admin.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("TEST_DATABASE_URL must end in /<database>"),
        };
        Self { name, url }
    }

    /// A migrated store on this database, with a small pool: tests run in
    /// parallel and PostgreSQL's default limit is 100 connections.
    pub async fn store(&self) -> PgStore {
        self.store_with_pool(8).await
    }

    pub async fn store_with_pool(&self, connections: usize) -> PgStore {
        let store = PgStore::connect(&self.url, connections).expect("pool");
        store.migrate().await.expect("migrate");
        store
    }

    /// A plain connection to this database, for the few tests that must look
    /// beneath the API (how a password is stored) or age data in place (an
    /// expired refresh token) instead of waiting for it.
    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }
}

pub(crate) async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to TEST_DATABASE_URL");
    tokio::spawn(connection);
    client
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any runtime guarantee: use a thread of our own.
        let dropper = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    let client = connect(&admin_url()).await;
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = client.batch_execute(&sql).await;
                });
            }
        });
        let _ = dropper.join();
    }
}

/// Whether the integration suite runs embedded (`TICKETFLOW_TEST_MODE=embedded`:
/// SQLite files in a temporary data directory and the in-process broker) or,
/// by default, on PostgreSQL and NATS.
pub fn embedded_mode() -> bool {
    std::env::var("TICKETFLOW_TEST_MODE").is_ok_and(|mode| mode == "embedded")
}
