//! A database of one's own per test, on the PostgreSQL server that
//! `TEST_DATABASE_URL` names.

use ticketflow_store::pg::PgStore;

pub(crate) fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A database of one's own, dropped when this value is.
pub struct TestDb {
    pub name: String,
    pub url: String,
    /// The server's maintenance database, where this one is dropped from.
    admin: String,
}

impl TestDb {
    pub async fn create() -> Self {
        Self::create_on(admin_url()).await
    }

    /// A database of one's own on the server whose maintenance database
    /// `admin` names (a [`crate::PrivatePostgres`], say).
    pub async fn create_on(admin: String) -> Self {
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
        Self { name, url, admin }
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
    /// Reads the log (to check it against the event schemas), then drops
    /// the database.
    fn drop(&mut self) {
        let (name, url, admin) = (self.name.clone(), self.url.clone(), self.admin.clone());
        // Drop runs outside any runtime guarantee: use a thread of our own.
        let dropper = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let Ok(rt) = rt else {
                return Vec::new();
            };
            rt.block_on(async {
                let log = match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
                    Ok((client, connection)) => {
                        tokio::spawn(connection);
                        crate::schemas::pg_log(&client).await
                    }
                    Err(_) => Vec::new(),
                };
                let client = connect(&admin).await;
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                let _ = client.batch_execute(&sql).await;
                log
            })
        });
        if let Ok(log) = dropper.join() {
            crate::schemas::assert_log_matches(&log);
        }
    }
}
