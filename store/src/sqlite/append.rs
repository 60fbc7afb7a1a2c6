//! Appending events, on the writer thread (see [`super::writer`]): every
//! function here runs inside the writer's transaction, in the savepoint of
//! one append, so an error undoes that append alone.
//!
//! No locks are needed for the invariants PostgreSQL keeps with row locks:
//! one connection writes, one append at a time, so what an append reads
//! (stream versions, project counters, the head) cannot change under it.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use ticketflow_domain::event::Payload as _;
use ticketflow_domain::inbox::{Inbox, InboxEvent};
use ticketflow_domain::project::{Project, ProjectEvent, ProjectPayload};
use ticketflow_domain::ticket::{Ticket, TicketEvent, TicketPayload};
use uuid::Uuid;

use super::{json, micros, taken};
use crate::chain::event_hash;
use crate::event_store::{Append, Committed, Metadata, RawJson, StoredEvent};
use crate::stream::{apply_all, role_name, snapshot_due, StreamKind};
use crate::{CommandKey, StoreError};

pub(super) fn append_project(
    conn: &Connection,
    append: Append<Project, ProjectEvent>,
) -> Result<Committed<Project>, StoreError> {
    append_unsequenced(conn, append, index_project)
}

/// A user's inbox: no project row to keep.
pub(super) fn append_inbox(
    conn: &Connection,
    append: Append<Inbox, InboxEvent>,
) -> Result<Committed<Inbox>, StoreError> {
    append_unsequenced(conn, append, |_, _, _| Ok(()))
}

/// Appends to a stream whose events take no channel seq (a project's, an
/// inbox's), after `index` keeps what the stream's events index.
fn append_unsequenced<A: StreamKind>(
    conn: &Connection,
    append: Append<A, A::Event>,
    index: impl FnOnce(&Connection, Uuid, &[A::Event]) -> Result<(), StoreError>,
) -> Result<Committed<A>, StoreError> {
    let Append {
        stream_id,
        project_id,
        before,
        events,
        metadata,
    } = append;
    let expected = before.version as i64;
    check_version(conn, stream_id, expected)?;
    if events.is_empty() {
        return Ok(Committed {
            state: before.state,
            events: Vec::new(),
        });
    }
    index(conn, project_id, &events)?;
    let stream = Stream {
        stream_id,
        project_id,
        expected,
    };
    let seqs = vec![None; events.len()];
    commit_events::<A>(conn, stream, before.state, &events, &seqs, &metadata)
}

/// `project_version`: the project version the events were decided against,
/// if they depend on it.
pub(super) fn append_ticket(
    conn: &Connection,
    append: Append<Ticket, TicketEvent>,
    project_version: Option<u64>,
) -> Result<Committed<Ticket>, StoreError> {
    let Append {
        stream_id,
        project_id,
        before,
        mut events,
        metadata,
    } = append;
    let expected = before.version as i64;
    check_version(conn, stream_id, expected)?;
    if let Some(decided_on) = project_version {
        let now = stream_version(conn, project_id)?.unwrap_or(0) as u64;
        if now != decided_on {
            return Err(StoreError::ProjectMoved { current: now });
        }
    }
    if events.is_empty() {
        return Ok(Committed {
            state: before.state,
            events: Vec::new(),
        });
    }
    let seqs = number_and_sequence(conn, project_id, &mut events)?;
    let stream = Stream {
        stream_id,
        project_id,
        expected,
    };
    commit_events::<Ticket>(conn, stream, before.state, &events, &seqs, &metadata)
}

/// Writes checked events to their stream, snapshots the state they lead to
/// when one is due, and returns both.
fn commit_events<A: StreamKind>(
    conn: &Connection,
    stream: Stream,
    before: A,
    events: &[A::Event],
    seqs: &[Option<i64>],
    metadata: &Metadata,
) -> Result<Committed<A>, StoreError> {
    let (stream_id, expected) = (stream.stream_id, stream.expected);
    let state = apply_all(before, events);
    let stored = write_events::<A>(conn, stream, events, seqs, metadata)?;
    let versions = (expected, expected + events.len() as i64);
    snapshot_if_due(conn, stream_id, versions, &state)?;
    if let Some(command) = &metadata.idempotency {
        mark_key(conn, command, stream_id, versions)?;
    }
    Ok(Committed {
        state,
        events: stored,
    })
}

fn stream_version(conn: &Connection, stream_id: Uuid) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT version FROM streams WHERE stream_id = ?1")?
        .query_row([stream_id], |r| r.get(0))
        .optional()?)
}

/// The compare-and-set: the stream must still be at `expected` (0: absent).
fn check_version(conn: &Connection, stream_id: Uuid, expected: i64) -> Result<(), StoreError> {
    let current = stream_version(conn, stream_id)?.unwrap_or(0);
    if current == expected {
        Ok(())
    } else {
        Err(StoreError::VersionConflict {
            current: current as u64,
        })
    }
}

/// Keeps the project index and member list in step with the events.
fn index_project(
    conn: &Connection,
    project_id: Uuid,
    events: &[ProjectEvent],
) -> Result<(), StoreError> {
    for event in events {
        match &event.payload {
            ProjectPayload::ProjectCreated {
                key,
                name,
                statuses,
                ..
            } => {
                conn.prepare_cached(
                    "INSERT INTO projects (project_id, key, name, statuses, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    project_id,
                    key,
                    name,
                    json(statuses)?,
                    micros(event.meta.occurred_at),
                ])
                .map_err(|e| taken(e, "projects.key", "project_key"))?;
            }
            ProjectPayload::MemberAdded { member } => {
                conn.prepare_cached(
                    "INSERT INTO project_members
                       (project_id, user_id, username, display_name, role, joined_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    project_id,
                    member.user_id,
                    member.username,
                    member.display_name,
                    role_name(member.role),
                    micros(member.joined_at),
                ])?;
            }
            ProjectPayload::MemberRemoved { user_id, .. } => {
                conn.prepare_cached(
                    "DELETE FROM project_members WHERE project_id = ?1 AND user_id = ?2",
                )?
                .execute(params![project_id, user_id])?;
            }
            ProjectPayload::AnnouncementPosted { .. } => {}
        }
    }
    Ok(())
}

/// Takes one channel seq per event and one ticket number per created ticket
/// from the project's counters, and moves them on: gap-free and unique,
/// since no other append runs meanwhile.
fn number_and_sequence(
    conn: &Connection,
    project_id: Uuid,
    events: &mut [TicketEvent],
) -> Result<Vec<Option<i64>>, StoreError> {
    let (key, mut last_seq, mut last_number): (String, i64, i64) = conn
        .prepare_cached(
            "SELECT key, last_seq, last_ticket_number FROM projects WHERE project_id = ?1",
        )?
        .query_row([project_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?
        .ok_or_else(|| StoreError::Corrupt(format!("project {project_id} has no index row")))?;
    let seqs = events
        .iter_mut()
        .map(|event| {
            if matches!(event.payload, TicketPayload::TicketCreated { .. }) {
                last_number += 1;
                event.payload.assign_number(&key, last_number as u64);
            }
            last_seq += 1;
            Some(last_seq)
        })
        .collect();
    conn.prepare_cached(
        "UPDATE projects SET last_seq = ?2, last_ticket_number = ?3 WHERE project_id = ?1",
    )?
    .execute(params![project_id, last_seq, last_number])?;
    Ok(seqs)
}

/// Where appended events go.
struct Stream {
    stream_id: Uuid,
    project_id: Uuid,
    /// The version the events continue from.
    expected: i64,
}

/// Inserts the events at the next positions, chained from the last event's
/// hash (none while the log is not chained: no hashes then), moves the
/// stream to its new version and last position, and returns the events as
/// stored.
fn write_events<A: StreamKind>(
    conn: &Connection,
    stream: Stream,
    events: &[A::Event],
    seqs: &[Option<i64>],
    metadata: &Metadata,
) -> Result<Vec<StoredEvent>, StoreError> {
    let head = super::events::chain_head(conn)?;
    let mut prev = head.hash;
    let mut insert = conn.prepare_cached(
        "INSERT INTO events (position, event_id, stream_id, stream_type, project_id, version,
             seq, event_type, schema_version, data, metadata, occurred_at, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?;
    let mut stored = Vec::with_capacity(events.len());
    for (i, (event, seq)) in events.iter().zip(seqs).enumerate() {
        let mut e = StoredEvent {
            position: head.position + 1 + i as i64,
            event_id: Uuid::now_v7(),
            stream_id: stream.stream_id,
            stream_type: A::STREAM_TYPE.to_string(),
            project_id: stream.project_id,
            version: stream.expected + 1 + i as i64,
            seq: *seq,
            event_type: event.payload.event_type().to_string(),
            schema_version: event.payload.schema_version() as i32,
            data: RawJson::from(event.data()?),
            actor: event.meta.actor.clone(),
            occurred_at: event.meta.occurred_at,
            metadata: metadata.stored(&event.meta.actor)?,
            hash: None,
        };
        e.hash = prev.map(|prev| event_hash(&prev, &e)).transpose()?;
        prev = e.hash;
        insert.execute(params![
            e.position,
            e.event_id,
            e.stream_id,
            e.stream_type,
            e.project_id,
            e.version,
            e.seq,
            e.event_type,
            e.schema_version,
            e.data.text(),
            e.metadata.text(),
            micros(e.occurred_at),
            e.hash.map(|h| h.0),
        ])?;
        stored.push(e);
    }
    let (version, last_position) = match stored.last() {
        Some(last) => (last.version, last.position),
        None => return Ok(stored),
    };
    conn.prepare_cached(
        "INSERT INTO streams (stream_id, stream_type, project_id, version, last_position)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (stream_id) DO UPDATE
         SET version = excluded.version, last_position = excluded.last_position",
    )?
    .execute(params![
        stream.stream_id,
        A::STREAM_TYPE,
        stream.project_id,
        version,
        last_position
    ])?;
    Ok(stored)
}

/// Marks a keyed command's Idempotency-Key with what it committed, in its
/// savepoint (see [`crate::CommittedCommand`]).
fn mark_key(
    conn: &Connection,
    command: &CommandKey,
    stream_id: Uuid,
    (from, to): (i64, i64),
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE idempotency_keys SET stream_id = ?3, from_version = ?4, to_version = ?5
         WHERE user_id = ?1 AND key = ?2",
    )?
    .execute(params![command.user_id, command.key, stream_id, from, to])?;
    Ok(())
}

/// A stream gets a snapshot whenever its version crosses a multiple of
/// [`crate::SNAPSHOT_EVERY`], so loading replays fewer than that many events.
fn snapshot_if_due<A: Serialize>(
    conn: &Connection,
    stream_id: Uuid,
    (from, to): (i64, i64),
    state: &A,
) -> Result<(), StoreError> {
    if !snapshot_due(from, to) {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO snapshots (stream_id, version, state) VALUES (?1, ?2, ?3)
         ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, state = excluded.state",
    )?
    .execute(params![stream_id, to, json(state)?])?;
    Ok(())
}
