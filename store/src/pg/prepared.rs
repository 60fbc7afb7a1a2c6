//! Statements prepared once per connection (deadpool's statement cache).
//!
//! An unprepared statement costs PostgreSQL a parse, an analysis and a plan,
//! and tokio-postgres a round trip to prepare it, every time: on the
//! relay's and projection workers' path that was most of a small batch's
//! cost. The cache is keyed by the statement's text, so a rebuild's copies
//! (other table names) get statements of their own; a table renamed under a
//! cached statement (a rebuild's swap) makes PostgreSQL analyse it again.

use deadpool_postgres::ClientWrapper;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Error, Row};

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

pub async fn execute(client: &ClientWrapper, sql: &str, params: Params<'_>) -> Result<u64, Error> {
    let statement = client.prepare_cached(sql).await?;
    client.execute(&statement, params).await
}

pub async fn query(
    client: &ClientWrapper,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<Row>, Error> {
    let statement = client.prepare_cached(sql).await?;
    client.query(&statement, params).await
}

pub async fn query_one(
    client: &ClientWrapper,
    sql: &str,
    params: Params<'_>,
) -> Result<Row, Error> {
    let statement = client.prepare_cached(sql).await?;
    client.query_one(&statement, params).await
}

pub async fn query_opt(
    client: &ClientWrapper,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<Row>, Error> {
    let statement = client.prepare_cached(sql).await?;
    client.query_opt(&statement, params).await
}
