//! A rebuild's copies and their indexes.
//!
//! Keeping an index up to date row by row while millions of rows go in costs
//! far more than building it once over the filled table (random keys such as
//! notification ids touch a different page for nearly every row, and every
//! page touched is written to the WAL). So a copy starts with only the
//! indexes applying needs: its primary key, which upserts (`ON CONFLICT`)
//! and lookups by id use, and none at all for a table the projection only
//! inserts into ([`crate::Projection::insert_only`]). The rest are built
//! after the replay, before the swap, each as the live table has it.
//!
//! `LIKE` and `ADD` give the copy's indexes (and the constraints they back)
//! generated names; the swap renames each to the name of the live index it
//! mirrors ([`index_renames`]), so the schema after a swap is the schema
//! before it and the next rebuild finds the same names again.

use ticketflow_store::StoreError;
use tokio_postgres::GenericClient;

/// One index of a table, as the catalog describes it.
#[derive(Debug)]
struct Index {
    name: String,
    /// The definition without the index and table names: equal shapes mean
    /// indexes built the same way.
    shape: String,
    primary: bool,
    /// What recreates it on another table: a constraint definition
    /// (`UNIQUE (user_id, seq)`) for an index backing one, else the index's
    /// definition from `USING` on.
    definition: Definition,
}

#[derive(Debug)]
enum Definition {
    Constraint(String),
    Index { unique: bool, using: String },
}

/// Creates `copy` empty, with the columns, defaults and storage parameters
/// (`fillfactor`) of `live` and the indexes applying needs (see the module's
/// doc); drops a copy a failed rebuild left first.
pub(super) async fn create_copy(
    client: &impl GenericClient,
    live: &str,
    copy: &str,
    insert_only: bool,
) -> Result<(), StoreError> {
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {copy};
             CREATE TABLE {copy} (LIKE {live} INCLUDING ALL EXCLUDING INDEXES);"
        ))
        .await?;
    // `LIKE` copies no storage parameters.
    let options: Option<Vec<String>> = client
        .query_one(
            "SELECT reloptions FROM pg_class WHERE oid = $1::text::regclass",
            &[&live],
        )
        .await?
        .try_get(0)?;
    if let Some(options) = options.filter(|o| !o.is_empty()) {
        let options = options.join(", ");
        client
            .batch_execute(&format!("ALTER TABLE {copy} SET ({options})"))
            .await?;
    }
    if !insert_only {
        add_indexes(client, live, copy, |index| index.primary).await?;
    }
    Ok(())
}

/// Gives the filled `copy` the rest of the indexes of `live`, and the
/// statistics the planner needs to use them once it is live.
pub(super) async fn complete_copy(
    client: &impl GenericClient,
    live: &str,
    copy: &str,
) -> Result<(), StoreError> {
    add_indexes(client, live, copy, |_| true).await?;
    client.batch_execute(&format!("ANALYZE {copy}")).await?;
    Ok(())
}

/// Builds on `copy` each index of `live` that is `wanted` and it lacks.
async fn add_indexes(
    client: &impl GenericClient,
    live: &str,
    copy: &str,
    wanted: impl Fn(&Index) -> bool,
) -> Result<(), StoreError> {
    let present: Vec<String> = indexes(client, copy)
        .await?
        .into_iter()
        .map(|index| index.shape)
        .collect();
    for index in indexes(client, live).await? {
        if wanted(&index) && !present.contains(&index.shape) {
            client.batch_execute(&index.create_on(copy)).await?;
        }
    }
    Ok(())
}

/// Pairs each index of `live` with the index of `copy` built the same way:
/// `(live name, copy name)`.
pub(super) async fn index_renames(
    client: &impl GenericClient,
    live: &str,
    copy: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    let live_indexes = indexes(client, live).await?;
    let copy_indexes = indexes(client, copy).await?;
    let same_shape = live_indexes.len() == copy_indexes.len()
        && live_indexes
            .iter()
            .zip(&copy_indexes)
            .all(|(l, c)| l.shape == c.shape);
    if !same_shape {
        return Err(StoreError::Corrupt(format!(
            "{copy} no longer has the indexes of {live}"
        )));
    }
    Ok(live_indexes
        .into_iter()
        .zip(copy_indexes)
        .map(|(l, c)| (l.name, c.name))
        .collect())
}

impl Index {
    /// The statement that builds this index on `table` (its name generated).
    fn create_on(&self, table: &str) -> String {
        match &self.definition {
            Definition::Constraint(definition) => format!("ALTER TABLE {table} ADD {definition}"),
            Definition::Index { unique, using } => {
                let unique = if *unique { "UNIQUE " } else { "" };
                format!("CREATE {unique}INDEX ON {table} USING {using}")
            }
        }
    }
}

/// A table's indexes, ordered by shape.
async fn indexes(client: &impl GenericClient, table: &str) -> Result<Vec<Index>, StoreError> {
    let rows = client
        .query(
            "SELECT c.relname::text,
                    i.indisprimary::text || ' ' || i.indisunique::text || ' ' || u.using AS shape,
                    i.indisprimary, i.indisunique, u.using,
                    pg_get_constraintdef(con.oid)
             FROM pg_index i
             JOIN pg_class c ON c.oid = i.indexrelid
             LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid
                                         AND con.conrelid = i.indrelid
             CROSS JOIN LATERAL (SELECT regexp_replace(pg_get_indexdef(i.indexrelid),
                                                       '^.*? USING ', '') AS using) u
             WHERE i.indrelid = $1::text::regclass
             ORDER BY shape, c.relname",
            &[&table],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let constraint: Option<String> = r.try_get(5)?;
            Ok(Index {
                name: r.try_get(0)?,
                shape: r.try_get(1)?,
                primary: r.try_get(2)?,
                definition: match constraint {
                    Some(definition) => Definition::Constraint(definition),
                    None => Definition::Index {
                        unique: r.try_get(3)?,
                        using: r.try_get(4)?,
                    },
                },
            })
        })
        .collect()
}
