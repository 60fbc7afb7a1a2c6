use thiserror::Error;

#[derive(Debug, Clone, Error)]
pub enum StoreError {
    /// The stream moved on since it was loaded.
    #[error("stream is at version {current}")]
    VersionConflict { current: u64 },
    /// A ticket's events were decided against a project that has moved on
    /// (its members or settings changed) since it was loaded.
    #[error("project is at version {current}")]
    ProjectMoved { current: u64 },
    /// A unique value (username, project key) is taken.
    #[error("{0} is taken")]
    Taken(&'static str),
    /// The database could not be reached or failed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        // The plain message of a server error is just "db error".
        match e.as_db_error() {
            Some(db) => Self::Unavailable(format!("{db}")),
            None => Self::Unavailable(e.to_string()),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self::Corrupt(e.to_string())
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::{Error as E, ErrorCode};
        match &e {
            // A value that does not decode as the type its column promises.
            E::FromSqlConversionFailure(..)
            | E::IntegralValueOutOfRange(..)
            | E::Utf8Error(..)
            | E::InvalidColumnType(..) => Self::Corrupt(e.to_string()),
            E::SqliteFailure(f, _)
                if matches!(f.code, ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) =>
            {
                Self::Corrupt(e.to_string())
            }
            _ => Self::Unavailable(e.to_string()),
        }
    }
}
