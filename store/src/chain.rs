//! The log's hash chain: each event's `hash = SHA-256(previous hash ‖
//! canonical bytes of the event)`, in position order, starting from 32 zero
//! bytes. The canonical bytes are a JSON object any language can rebuild
//! (`docs/audit.md`): every object's keys sorted by their UTF-8 bytes at every
//! depth, no whitespace, strings escaped as serde_json escapes them.
//!
//! Both backends chain where their appends are already serialised (see
//! `pg::append` and `sqlite::append`), `ticketflow audit verify` recomputes
//! the chain with a [`Verifier`], and the migrations chain logs written
//! before the chain existed with [`next_hash`].

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::event_store::StoredEvent;
use crate::StoreError;

/// A link of the chain: 32 bytes, shown as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// What the first event chains from.
    pub const GENESIS: Hash = Hash([0; 32]);

    /// A stored hash column's bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, StoreError> {
        <[u8; 32]>::try_from(bytes).map(Self).map_err(|_| {
            StoreError::Corrupt(format!("a stored hash has {} bytes, not 32", bytes.len()))
        })
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Hash {
    type Err = hex::FromHexError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0; 32];
        hex::decode_to_slice(text, &mut bytes)?;
        Ok(Self(bytes))
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// `SHA-256(prev ‖ canonical)`.
pub fn next_hash(prev: &Hash, canonical: &[u8]) -> Hash {
    let mut sha = Sha256::new();
    sha.update(prev.0);
    sha.update(canonical);
    Hash(sha.finalize().into())
}

/// The event's hash when it follows `prev`.
pub fn event_hash(prev: &Hash, event: &StoredEvent) -> Result<Hash, serde_json::Error> {
    Ok(next_hash(prev, &canonical_bytes(event)?))
}

/// The canonical bytes of an event (its `hash` aside).
pub fn canonical_bytes(event: &StoredEvent) -> Result<Vec<u8>, serde_json::Error> {
    let (mut bytes, tail) = Fields::of(event).canonical_parts()?;
    bytes.extend_from_slice(event.position.to_string().as_bytes());
    bytes.extend_from_slice(&tail);
    Ok(bytes)
}

/// What the canonical form holds of an event but its position.
pub(crate) struct Fields<'a> {
    pub data: &'a RawValue,
    pub event_id: Uuid,
    pub metadata: &'a RawValue,
    pub occurred_at: DateTime<Utc>,
    pub project_id: Uuid,
    pub schema_version: i32,
    pub seq: Option<i64>,
    pub stream_id: Uuid,
    pub stream_type: &'a str,
    pub event_type: &'a str,
    pub version: i64,
}

impl<'a> Fields<'a> {
    fn of(e: &'a StoredEvent) -> Self {
        Self {
            data: e.data.get(),
            event_id: e.event_id,
            metadata: e.metadata.get(),
            occurred_at: e.occurred_at,
            project_id: e.project_id,
            schema_version: e.schema_version,
            seq: e.seq,
            stream_id: e.stream_id,
            stream_type: &e.stream_type,
            event_type: &e.event_type,
            version: e.version,
        }
    }

    /// The canonical bytes before and after the position's digits:
    /// PostgreSQL learns the position only in the statement that chains the
    /// event (under the head row's lock), so it joins the three itself.
    pub(crate) fn canonical_parts(&self) -> Result<(Vec<u8>, Vec<u8>), serde_json::Error> {
        let mut head = Vec::with_capacity(512);
        head.extend_from_slice(b"{\"data\":");
        write_canonical(&mut head, &serde_json::from_str(self.data.get())?)?;
        head.extend_from_slice(b",\"event_id\":\"");
        head.extend_from_slice(self.event_id.hyphenated().to_string().as_bytes());
        head.extend_from_slice(b"\",\"metadata\":");
        write_canonical(&mut head, &serde_json::from_str(self.metadata.get())?)?;
        head.extend_from_slice(b",\"occurred_at\":\"");
        let occurred_at = self
            .occurred_at
            .to_rfc3339_opts(SecondsFormat::Micros, true);
        head.extend_from_slice(occurred_at.as_bytes());
        head.extend_from_slice(b"\",\"position\":");

        let mut tail = Vec::with_capacity(256);
        tail.extend_from_slice(b",\"project_id\":\"");
        tail.extend_from_slice(self.project_id.hyphenated().to_string().as_bytes());
        tail.extend_from_slice(b"\",\"schema_version\":");
        tail.extend_from_slice(self.schema_version.to_string().as_bytes());
        tail.extend_from_slice(b",\"seq\":");
        match self.seq {
            Some(seq) => tail.extend_from_slice(seq.to_string().as_bytes()),
            None => tail.extend_from_slice(b"null"),
        }
        tail.extend_from_slice(b",\"stream_id\":\"");
        tail.extend_from_slice(self.stream_id.hyphenated().to_string().as_bytes());
        tail.extend_from_slice(b"\",\"stream_type\":");
        serde_json::to_writer(&mut tail, self.stream_type)?;
        tail.extend_from_slice(b",\"type\":");
        serde_json::to_writer(&mut tail, self.event_type)?;
        tail.extend_from_slice(b",\"version\":");
        tail.extend_from_slice(self.version.to_string().as_bytes());
        tail.push(b'}');
        Ok((head, tail))
    }
}

/// `value` with every object's keys sorted by their UTF-8 bytes, at every
/// depth. Not left to serde_json's map: with its `preserve_order` feature
/// (which a dependency may turn on) a map keeps insertion order.
/// Writes `value` with every object's keys in byte order, at every depth, and
/// no whitespace: how the canonical form writes JSON (`docs/audit.md`).
pub fn write_canonical(out: &mut Vec<u8>, value: &Value) -> Result<(), serde_json::Error> {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key)?;
                out.push(b':');
                write_canonical(out, value)?;
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(out, item)?;
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar)?,
    }
    Ok(())
}

/// The chain's head: the newest event's position and hash (position 0 and
/// [`Hash::GENESIS`] for an empty log). No hash while the log is not chained
/// yet (a migration is chaining it, or an event was written without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    pub position: i64,
    pub hash: Option<Hash>,
}

/// Where the chain first breaks, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// Positions `position..resumes_at` are missing.
    Removed { position: i64, resumes_at: i64 },
    /// An event at a position already passed (a duplicate, or out of order).
    Repeated { position: i64 },
    /// An event without a hash.
    Unchained { position: i64 },
    /// The event's contents no longer give its hash, yet the next event
    /// chains from that hash: the event was changed after it was chained.
    Altered { position: i64 },
    /// Neither the event's contents nor the next event agree with its hash.
    Inserted { position: i64 },
    /// The last event's contents do not give its hash (nothing after it
    /// tells an alteration from an insertion).
    Mismatch { position: i64 },
    /// The log's recorded head is not where the events end.
    Head { position: i64, recorded: ChainHead },
    /// The event's stored JSON cannot be read.
    Unreadable { position: i64, error: String },
}

impl Break {
    /// The first position the break concerns.
    pub fn position(&self) -> i64 {
        match self {
            Self::Removed { position, .. }
            | Self::Repeated { position }
            | Self::Unchained { position }
            | Self::Altered { position }
            | Self::Inserted { position }
            | Self::Mismatch { position }
            | Self::Head { position, .. }
            | Self::Unreadable { position, .. } => *position,
        }
    }
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Removed {
                position,
                resumes_at,
            } => write!(
                f,
                "position {position}: removed (events {position} to {} are missing; the log \
                 goes on at {resumes_at})",
                resumes_at - 1
            ),
            Self::Repeated { position } => write!(
                f,
                "position {position}: inserted (the position repeats or goes back)"
            ),
            Self::Unchained { position } => write!(
                f,
                "position {position}: inserted (the event has no hash: it was not written \
                 through the log's append)"
            ),
            Self::Altered { position } => write!(
                f,
                "position {position}: altered (its contents no longer give its hash, which the \
                 next event chains from)"
            ),
            Self::Inserted { position } => write!(
                f,
                "position {position}: inserted (its hash chains with neither its contents nor \
                 the next event; or altered along with its hash)"
            ),
            Self::Mismatch { position } => write!(
                f,
                "position {position}: altered or inserted (the last event's contents do not \
                 give its hash)"
            ),
            Self::Head { position, recorded } => write!(
                f,
                "position {position}: the log's recorded head (position {}, hash {}) is not \
                 where its events end: events removed from the end, or the head altered",
                recorded.position,
                recorded.hash.map_or("none".to_string(), |h| h.to_string())
            ),
            Self::Unreadable { position, error } => {
                write!(
                    f,
                    "position {position}: altered (its JSON is unreadable: {error})"
                )
            }
        }
    }
}

/// An intact stretch of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// Events checked.
    pub events: u64,
    /// The last one's position and hash (those given to [`Verifier::new`]
    /// when none was checked).
    pub position: i64,
    pub hash: Hash,
}

/// Recomputes the chain over events fed in position order, in constant
/// memory, and reports the first break.
pub struct Verifier {
    prev: Hash,
    next: i64,
    events: u64,
    /// An event whose hash its contents do not give: the next event tells
    /// whether the event was altered (the chain goes on from its hash) or
    /// inserted (it does not).
    suspect: Option<(i64, Hash)>,
}

impl Verifier {
    /// Expects the event at `from` next, chained from `prev` (the stored
    /// hash at `from - 1`, or [`Hash::GENESIS`] when `from` is 1).
    pub fn new(from: i64, prev: Hash) -> Self {
        Self {
            prev,
            next: from,
            events: 0,
            suspect: None,
        }
    }

    /// Checks the next event.
    pub fn push(&mut self, event: &StoredEvent) -> Result<(), Break> {
        let position = event.position;
        let hash_after = |prev: &Hash| {
            event_hash(prev, event).map_err(|e| Break::Unreadable {
                position,
                error: e.to_string(),
            })
        };
        if let Some((suspect, stored)) = self.suspect.take() {
            let goes_on = position == suspect + 1 && event.hash == Some(hash_after(&stored)?);
            return Err(if goes_on {
                Break::Altered { position: suspect }
            } else {
                Break::Inserted { position: suspect }
            });
        }
        if position < self.next {
            return Err(Break::Repeated { position });
        }
        if position > self.next {
            return Err(Break::Removed {
                position: self.next,
                resumes_at: position,
            });
        }
        let Some(stored) = event.hash else {
            return Err(Break::Unchained { position });
        };
        if hash_after(&self.prev)? != stored {
            self.suspect = Some((position, stored));
            return Ok(());
        }
        self.prev = stored;
        self.next += 1;
        self.events += 1;
        Ok(())
    }

    /// The outcome once every event up to `head` was pushed: the chain must
    /// end where the log records its head.
    pub fn finish(self, head: &ChainHead) -> Result<Verified, Break> {
        if let Some((position, _)) = self.suspect {
            return Err(Break::Mismatch { position });
        }
        let last = self.next - 1;
        let position = match head.position.cmp(&last) {
            std::cmp::Ordering::Greater => last + 1,
            std::cmp::Ordering::Less => head.position + 1,
            std::cmp::Ordering::Equal if head.hash != Some(self.prev) => last,
            std::cmp::Ordering::Equal => 0,
        };
        if position > 0 {
            return Err(Break::Head {
                position,
                recorded: *head,
            });
        }
        Ok(Verified {
            events: self.events,
            position: last,
            hash: self.prev,
        })
    }
}

#[cfg(test)]
mod tests;

/// Why [`verify`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("the chain breaks at {0}")]
    Broken(Break),
    #[error("cannot read the log: {0}")]
    Store(#[from] StoreError),
}

/// Events read per query by [`verify`].
const VERIFY_BATCH: i64 = 1_000;

/// Recomputes the chain of `store`'s log from position `from` (chained from
/// the stored hash at `from - 1`) to the head recorded when it starts,
/// reading a batch at a time; `progress` hears of each batch's last
/// position. Appends made meanwhile are left for the next run.
pub async fn verify(
    store: &dyn crate::EventStore,
    from: i64,
    mut progress: impl FnMut(i64),
) -> Result<(Verified, ChainHead), Failure> {
    let head = store.chain_head().await?;
    let from = from.max(1);
    let prev = if from == 1 {
        Hash::GENESIS
    } else {
        let before = store.read_all(from - 2, 1).await?;
        match before.first() {
            Some(e) if e.position == from - 1 => {
                e.hash.ok_or(Failure::Broken(Break::Unchained {
                    position: e.position,
                }))?
            }
            other => {
                return Err(Failure::Broken(Break::Removed {
                    position: from - 1,
                    resumes_at: other.map_or(head.position + 1, |e| e.position),
                }))
            }
        }
    };
    let mut verifier = Verifier::new(from, prev);
    let mut after = from - 1;
    while after < head.position {
        let limit = VERIFY_BATCH.min(head.position - after);
        let events = store.read_all(after, limit).await?;
        let Some(last) = events.last() else {
            break;
        };
        after = last.position;
        for event in &events {
            verifier.push(event).map_err(Failure::Broken)?;
        }
        progress(after);
    }
    let verified = verifier.finish(&head).map_err(Failure::Broken)?;
    Ok((verified, head))
}
