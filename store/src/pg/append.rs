//! Appending events: what every append writes, and the project append (one
//! transaction per command; ticket appends are batched, see
//! [`super::group_commit`]).
//!
//! Lock order, the same for every transaction that appends, so two never
//! deadlock, on one instance or several:
//! 1. stream rows (compare-and-set on their version), by stream id;
//! 2. project rows (ticket numbers, channel seq; membership changes lock the
//!    row too, so a ticket batch that holds it sees a stable member list), by
//!    project id;
//! 3. the global head row (positions), taken last and held only for the
//!    insert and the commit.
//!
//! Because every append holds the head row from taking its positions until it
//! commits, appends commit in position order: a reader that sees position p
//! has already been able to see every position below p.

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use serde::Serialize;
use ticketflow_domain::event::{Actor, Payload as _};
use ticketflow_domain::inbox::{Inbox, InboxEvent};
use ticketflow_domain::project::{Project, ProjectEvent, ProjectPayload};
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::{taken, PgStore};
use crate::chain::{Fields, Hash};
use crate::event_store::{Append, Committed, RawJson, StoredEvent};
use crate::stream::{apply_all, role_name, snapshot_due, StreamKind};
use crate::StoreError;

/// Keeps the project index and member list in step with the events.
async fn index_project(
    tx: &Transaction<'_>,
    project_id: Uuid,
    events: &[ProjectEvent],
) -> Result<(), StoreError> {
    let creates = matches!(
        events.first().map(|e| &e.payload),
        Some(ProjectPayload::ProjectCreated { .. })
    );
    if !creates {
        // Ticket batches hold this row while they check the project's version
        // (lock order step 2), so a membership change and a ticket append
        // decided on the old members commit one after the other.
        tx.execute(
            "SELECT 1 FROM projects WHERE project_id = $1 FOR NO KEY UPDATE",
            &[&project_id],
        )
        .await?;
    }
    for event in events {
        match &event.payload {
            ProjectPayload::ProjectCreated {
                key,
                name,
                statuses,
                ..
            } => {
                tx.execute(
                    "INSERT INTO projects (project_id, key, name, statuses, created_at)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[
                        &project_id,
                        key,
                        name,
                        &serde_json::to_value(statuses)?,
                        &event.meta.occurred_at,
                    ],
                )
                .await
                .map_err(|e| taken(e, "projects_key_key", "project_key"))?;
            }
            ProjectPayload::MemberAdded { member } => {
                tx.execute(
                    "INSERT INTO project_members
                       (project_id, user_id, username, display_name, role, joined_at)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        &project_id,
                        &member.user_id,
                        &member.username,
                        &member.display_name,
                        &role_name(member.role),
                        &member.joined_at,
                    ],
                )
                .await?;
            }
            ProjectPayload::MemberRemoved { user_id, .. } => {
                tx.execute(
                    "DELETE FROM project_members WHERE project_id = $1 AND user_id = $2",
                    &[&project_id, user_id],
                )
                .await?;
            }
            ProjectPayload::AnnouncementPosted { .. } => {}
        }
    }
    Ok(())
}

impl PgStore {
    pub(super) async fn append_project_events(
        &self,
        append: Append<Project, ProjectEvent>,
    ) -> Result<Committed<Project>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let expected = compare_and_set::<Project>(&tx, &append).await?;
        index_project(&tx, append.project_id, &append.events).await?;
        commit_unsequenced(tx, append, expected).await
    }

    /// A user's inbox: the stream row and the head row only (lock order
    /// steps 1 and 3; no project row).
    pub(super) async fn append_inbox_events(
        &self,
        append: Append<Inbox, InboxEvent>,
    ) -> Result<Committed<Inbox>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let expected = compare_and_set::<Inbox>(&tx, &append).await?;
        commit_unsequenced(tx, append, expected).await
    }
}

/// Moves an append's stream to its new version (see
/// [`compare_and_set_version`]); returns the version it expected.
async fn compare_and_set<A: StreamKind>(
    tx: &Transaction<'_>,
    append: &Append<A, A::Event>,
) -> Result<i64, StoreError> {
    let expected = append.before.version as i64;
    let new_version = expected + append.events.len() as i64;
    compare_and_set_version::<A>(
        tx,
        append.stream_id,
        append.project_id,
        expected,
        new_version,
    )
    .await?;
    Ok(expected)
}

/// The rest of an append to a stream whose events take no channel seq (a
/// project's, an inbox's): its snapshot if due, its rows, the commit.
async fn commit_unsequenced<A: StreamKind>(
    tx: Transaction<'_>,
    append: Append<A, A::Event>,
    expected: i64,
) -> Result<Committed<A>, StoreError> {
    let Append {
        stream_id,
        project_id,
        before,
        events,
        metadata,
    } = append;
    let new_version = expected + events.len() as i64;
    let state = apply_all(before.state, &events);
    let mut snapshots = Snapshots::default();
    snapshots.push_if_due(stream_id, expected, new_version, &state)?;
    snapshots.write(&tx).await?;

    let mut rows = Rows::default();
    let seqs = vec![None; events.len()];
    rows.push::<A>(stream_id, project_id, expected, &events, &seqs, &metadata)?;
    let written = rows.write(&tx).await?;
    tx.commit().await?;
    Ok(Committed {
        state,
        events: rows.stored(&written, 0..events.len()),
    })
}

/// Moves the stream from `expected` to `new_version`, or reports where it is.
async fn compare_and_set_version<A: StreamKind>(
    tx: &Transaction<'_>,
    stream_id: Uuid,
    project_id: Uuid,
    expected: i64,
    new_version: i64,
) -> Result<(), StoreError> {
    let changed = if expected == 0 {
        tx.execute(
            "INSERT INTO streams (stream_id, stream_type, project_id, version, last_position)
             VALUES ($1, $2, $3, $4, 0) ON CONFLICT (stream_id) DO NOTHING",
            &[&stream_id, &A::STREAM_TYPE, &project_id, &new_version],
        )
        .await?
    } else {
        tx.execute(
            "UPDATE streams SET version = $3 WHERE stream_id = $1 AND version = $2",
            &[&stream_id, &expected, &new_version],
        )
        .await?
    };
    if changed == 1 {
        return Ok(());
    }
    let current: i64 = tx
        .query_opt(
            "SELECT version FROM streams WHERE stream_id = $1",
            &[&stream_id],
        )
        .await?
        .map_or(0, |r| r.get(0));
    Err(StoreError::VersionConflict {
        current: current as u64,
    })
}

/// Snapshots due in one transaction: a stream gets one whenever its version
/// crosses a multiple of [`SNAPSHOT_EVERY`].
#[derive(Default)]
pub(super) struct Snapshots {
    stream_ids: Vec<Uuid>,
    versions: Vec<i64>,
    states: Vec<serde_json::Value>,
}

impl Snapshots {
    pub(super) fn push_if_due<A: Serialize>(
        &mut self,
        stream_id: Uuid,
        from: i64,
        to: i64,
        state: &A,
    ) -> Result<(), StoreError> {
        if snapshot_due(from, to) {
            self.stream_ids.push(stream_id);
            self.versions.push(to);
            self.states.push(serde_json::to_value(state)?);
        }
        Ok(())
    }

    pub(super) async fn write(&self, tx: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
        if self.stream_ids.is_empty() {
            return Ok(());
        }
        tx.execute(WRITE_SNAPSHOTS, &self.params()).await?;
        Ok(())
    }

    /// The parameters of [`WRITE_SNAPSHOTS`].
    pub(super) fn params(&self) -> [&(dyn ToSql + Sync); 3] {
        [&self.stream_ids, &self.versions, &self.states]
    }
}

/// Writes [`Snapshots`]; with none due, it writes nothing.
pub(super) const WRITE_SNAPSHOTS: &str = "INSERT INTO snapshots (stream_id, version, state)
    SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::jsonb[])
    ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version, state = EXCLUDED.state";

/// The events of one transaction, column by column for one `UNNEST` insert,
/// each at an offset from the position the head row hands out.
#[derive(Default)]
pub(super) struct Rows {
    offsets: Vec<i64>,
    event_ids: Vec<Uuid>,
    stream_ids: Vec<Uuid>,
    stream_types: Vec<&'static str>,
    project_ids: Vec<Uuid>,
    versions: Vec<i64>,
    seqs: Vec<Option<i64>>,
    types: Vec<String>,
    schema_versions: Vec<i32>,
    data: Vec<RawJson>,
    metadata: Vec<RawJson>,
    actors: Vec<Actor>,
    occurred_at: Vec<DateTime<Utc>>,
    /// Each event's canonical bytes before and after its position (see
    /// [`crate::chain`]), which [`WRITE_EVENTS`] chains once it holds the
    /// head row.
    canonical: (Vec<Vec<u8>>, Vec<Vec<u8>>),
    /// Per appended stream: its id, new version and last event's offset.
    streams: (Vec<Uuid>, Vec<i64>, Vec<i64>),
    marks: Marks,
}

/// The Idempotency-Keys of the keyed appends among [`Rows`], marked with
/// what each committed (see [`crate::CommittedCommand`]).
#[derive(Default)]
struct Marks {
    user_ids: Vec<Uuid>,
    keys: Vec<String>,
    stream_ids: Vec<Uuid>,
    from_versions: Vec<i64>,
    to_versions: Vec<i64>,
}

impl Rows {
    pub(super) fn len(&self) -> usize {
        self.event_ids.len()
    }

    /// Adds one stream's events, which continue it from `expected`.
    pub(super) fn push<A: StreamKind>(
        &mut self,
        stream_id: Uuid,
        project_id: Uuid,
        expected: i64,
        events: &[A::Event],
        seqs: &[Option<i64>],
        metadata: &crate::Metadata,
    ) -> Result<(), StoreError> {
        for (i, (event, seq)) in events.iter().zip(seqs).enumerate() {
            let data = RawJson::from(event.data()?);
            let stored_metadata = metadata.stored(&event.meta.actor)?;
            let fields = Fields {
                data: data.get(),
                event_id: Uuid::now_v7(),
                metadata: stored_metadata.get(),
                occurred_at: event.meta.occurred_at,
                project_id,
                schema_version: event.payload.schema_version() as i32,
                seq: *seq,
                stream_id,
                stream_type: A::STREAM_TYPE,
                event_type: event.payload.event_type(),
                version: expected + 1 + i as i64,
            };
            let (head, tail) = fields.canonical_parts()?;
            self.canonical.0.push(head);
            self.canonical.1.push(tail);
            self.offsets.push(self.len() as i64 + 1);
            self.event_ids.push(fields.event_id);
            self.stream_ids.push(stream_id);
            self.stream_types.push(A::STREAM_TYPE);
            self.project_ids.push(project_id);
            self.versions.push(fields.version);
            self.seqs.push(*seq);
            self.types.push(fields.event_type.to_string());
            self.schema_versions.push(fields.schema_version);
            self.actors.push(event.meta.actor.clone());
            self.occurred_at.push(event.meta.occurred_at);
            self.data.push(data);
            self.metadata.push(stored_metadata);
        }
        let new_version = expected + events.len() as i64;
        self.streams.0.push(stream_id);
        self.streams.1.push(new_version);
        self.streams.2.push(self.len() as i64);
        if let Some(command) = &metadata.idempotency {
            let marks = &mut self.marks;
            marks.user_ids.push(command.user_id);
            marks.keys.push(command.key.clone());
            marks.stream_ids.push(stream_id);
            marks.from_versions.push(expected);
            marks.to_versions.push(new_version);
        }
        Ok(())
    }

    /// Takes positions from the head row (held until commit, lock order step
    /// 3), inserts the events, moves each stream's version and last position,
    /// and notifies watchers (delivered at commit, so a watcher never hears of
    /// an uncommitted event).
    pub(super) async fn write(&self, tx: &Transaction<'_>) -> Result<Written, StoreError> {
        let lock = tx.prepare_cached(LOCK_HEAD);
        let write = tx.prepare_cached(WRITE_EVENTS);
        let notify = tx.prepare_cached(NOTIFY_HEAD);
        let (lock, write, notify) = futures::try_join!(lock, write, notify)?;
        let (params, notify_params) = (self.params(), notify_params());
        // Pipelined: the write reads the head row once it is locked, the
        // notification the head the write moved.
        let (_, row, _) = futures::try_join!(
            tx.execute(&lock, &[]),
            tx.query_one(&write, &params),
            tx.execute(&notify, &notify_params),
        )?;
        Written::from_row(&row)
    }

    /// The parameters of [`WRITE_EVENTS`].
    pub(super) fn params(&self) -> [&(dyn ToSql + Sync); 22] {
        [
            &self.offsets,
            &self.event_ids,
            &self.stream_ids,
            &self.stream_types,
            &self.project_ids,
            &self.versions,
            &self.seqs,
            &self.types,
            &self.schema_versions,
            &self.data,
            &self.metadata,
            &self.occurred_at,
            &self.streams.0,
            &self.streams.1,
            &self.streams.2,
            &self.marks.user_ids,
            &self.marks.keys,
            &self.marks.stream_ids,
            &self.marks.from_versions,
            &self.marks.to_versions,
            &self.canonical.0,
            &self.canonical.1,
        ]
    }

    /// The stored form of the events in `range`, once written.
    pub(super) fn stored(
        &self,
        written: &Written,
        range: std::ops::Range<usize>,
    ) -> Vec<StoredEvent> {
        range
            .map(|i| StoredEvent {
                position: written.base + self.offsets[i],
                event_id: self.event_ids[i],
                stream_id: self.stream_ids[i],
                stream_type: self.stream_types[i].to_string(),
                project_id: self.project_ids[i],
                version: self.versions[i],
                seq: self.seqs[i],
                event_type: self.types[i].clone(),
                schema_version: self.schema_versions[i],
                data: self.data[i].clone(),
                actor: self.actors[i].clone(),
                occurred_at: self.occurred_at[i],
                metadata: self.metadata[i].clone(),
                hash: written.hashes.get(i).copied().flatten(),
            })
            .collect()
    }
}

/// What [`WRITE_EVENTS`] assigned: the position before the first event,
/// and each event's hash (none while the log is not chained yet).
pub(super) struct Written {
    base: i64,
    hashes: Vec<Option<Hash>>,
}

impl Written {
    pub(super) fn from_row(row: &tokio_postgres::Row) -> Result<Self, StoreError> {
        let hashes: Vec<Option<&[u8]>> = row.try_get(1)?;
        Ok(Self {
            base: row.try_get(0)?,
            hashes: hashes
                .into_iter()
                .map(|h| h.map(Hash::from_slice).transpose())
                .collect::<Result<_, _>>()?,
        })
    }
}

/// Tells watchers where the log's head is; run after [`WRITE_EVENTS`], in
/// the same transaction, so they hear of it at commit (with
/// [`notify_params`]).
pub(super) const NOTIFY_HEAD: &str = "SELECT pg_notify($1, position::text) FROM event_log_head";

pub(super) fn notify_params() -> [&'static (dyn ToSql + Sync); 1] {
    [&super::watch::EVENTS_CHANNEL]
}

/// Takes the head row (lock order step 3) in a statement of its own, sent
/// just before [`WRITE_EVENTS`] in the same round trip: the write then
/// starts (and takes its snapshot) once the row is this transaction's, and
/// reads the head's position and hash as the previous append committed
/// them.
pub(super) const LOCK_HEAD: &str = "SELECT 1 FROM event_log_head FOR UPDATE";

/// One statement, so the head row is held for as short a time as possible:
/// read the head row (locked by [`LOCK_HEAD`]), chain the events from its
/// hash (each event's canonical
/// bytes are the two parts given around its position's digits, see
/// [`crate::chain`]; a NULL head hash, a log not chained yet, gives NULLs),
/// take as many positions as there are offsets and move the head's hash on,
/// insert the events at those offsets, move each stream to its new version
/// and last position, and mark the Idempotency-Keys of keyed appends (none
/// on the usual path: the arrays are empty, and no round trip is added for
/// them). Returns the position before the first event and the hashes.
pub(super) const WRITE_EVENTS: &str = "
    WITH RECURSIVE locked AS (
        -- One row; saying so keeps the planner's estimates of what joins it
        -- small (unbounded, they grow past JIT compilation's threshold).
        SELECT position AS base, hash AS prev FROM event_log_head LIMIT 1
    ), chain (o, hash) AS (
        SELECT 0::bigint, prev FROM locked
        UNION ALL
        SELECT c.o + 1, sha256(c.hash || ($21::bytea[])[c.o + 1]
                               || convert_to((locked.base + c.o + 1)::text, 'UTF8')
                               || ($22::bytea[])[c.o + 1])
        FROM chain c, locked WHERE c.o < cardinality($1::bigint[])
    ), head AS (
        UPDATE event_log_head SET position = locked.base + cardinality($1::bigint[]),
            hash = (SELECT hash FROM chain WHERE o = cardinality($1::bigint[]))
        FROM locked
        RETURNING locked.base
    ), inserted AS (
        INSERT INTO events (position, event_id, stream_id, stream_type, project_id, version,
            seq, event_type, schema_version, data, metadata, occurred_at, hash)
        SELECT locked.base + u.o, u.id, u.sid, u.st, u.pid, u.v, u.s, u.t, u.sv, u.d, u.m, u.oa,
            chain.hash
        FROM locked, UNNEST($1::bigint[], $2::uuid[], $3::uuid[], $4::text[], $5::uuid[],
                          $6::bigint[], $7::bigint[], $8::text[], $9::int[], $10::jsonb[],
                          $11::jsonb[], $12::timestamptz[])
             AS u(o, id, sid, st, pid, v, s, t, sv, d, m, oa)
             JOIN chain ON chain.o = u.o
    ), moved AS (
        UPDATE streams s SET version = u.v, last_position = locked.base + u.o
        FROM locked, UNNEST($13::uuid[], $14::bigint[], $15::bigint[]) AS u(id, v, o)
        -- The ANY gives the planner an index path: joined to an UNNEST it
        -- would otherwise scan and hash the whole streams table every batch.
        WHERE s.stream_id = u.id AND s.stream_id = ANY($13)
    ), marked AS (
        UPDATE idempotency_keys k SET stream_id = u.sid, from_version = u.f, to_version = u.t
        FROM UNNEST($16::uuid[], $17::text[], $18::uuid[], $19::bigint[], $20::bigint[])
             AS u(uid, key, sid, f, t)
        WHERE k.user_id = u.uid AND k.key = u.key AND k.user_id = ANY($16)
    )
    SELECT base, ARRAY(SELECT hash FROM chain WHERE o > 0 ORDER BY o) FROM head";
