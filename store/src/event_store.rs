//! The event log's interface and the records it hands out.

use std::borrow::Cow;

use async_trait::async_trait;
use bytes::BytesMut;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use ticketflow_domain::event::{upcast, Actor, Event, Payload};
use ticketflow_domain::inbox::{Inbox, InboxEvent};
use ticketflow_domain::project::{Project, ProjectEvent, Role, Status};
use ticketflow_domain::ticket::{Ticket, TicketEvent};
use tokio_postgres::types::{to_sql_checked, IsNull, Json, ToSql, Type};
use uuid::Uuid;

use crate::chain::{ChainHead, Hash};
use crate::{BoardSnapshot, EventFilter, StoreError};

/// A snapshot is written whenever a stream's version crosses a multiple of
/// this, so loading replays fewer than this many events.
pub const SNAPSHOT_EVERY: u64 = 100;

/// An aggregate as loaded: its state and where its stream stands.
#[derive(Debug, Clone, Default)]
pub struct Loaded<A> {
    pub state: A,
    pub version: u64,
    /// Global position of the stream's last event, 0 for a new stream.
    pub last_position: i64,
    /// Events applied on top of the snapshot (bounded by [`SNAPSHOT_EVERY`]).
    pub replayed: usize,
}

/// Causation data stored with every event of one command.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Metadata {
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    /// The keyed request the events answer: the append marks its key (not
    /// stored with the events).
    #[serde(skip)]
    pub idempotency: Option<crate::CommandKey>,
}

impl Metadata {
    /// An event's stored metadata: this, and the actor of the event.
    pub(crate) fn stored(&self, actor: &Actor) -> Result<RawJson, serde_json::Error> {
        #[derive(Serialize)]
        struct Stored<'a> {
            actor: &'a Actor,
            causation_id: &'a Option<String>,
            correlation_id: &'a Option<String>,
        }
        RawJson::of(&Stored {
            actor,
            causation_id: &self.causation_id,
            correlation_id: &self.correlation_id,
        })
    }
}

/// Events to append to one stream, decided against `before`.
#[derive(Debug, Clone)]
pub struct Append<A, E> {
    pub stream_id: Uuid,
    pub project_id: Uuid,
    pub before: Loaded<A>,
    pub events: Vec<E>,
    pub metadata: Metadata,
}

/// What an append stored, and the state it produced.
#[derive(Debug, Clone)]
pub struct Committed<A> {
    pub state: A,
    pub events: Vec<StoredEvent>,
}

impl<A> Committed<A> {
    pub fn last_position(&self) -> i64 {
        self.events.last().map_or(0, |e| e.position)
    }
}

/// An event as recorded, with everything the store assigned. Its JSON form
/// is also the body of the event's message on the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub position: i64,
    pub event_id: Uuid,
    pub stream_id: Uuid,
    pub stream_type: String,
    pub project_id: Uuid,
    pub version: i64,
    pub seq: Option<i64>,
    pub event_type: String,
    pub schema_version: i32,
    pub data: RawJson,
    pub actor: Actor,
    pub occurred_at: DateTime<Utc>,
    pub metadata: RawJson,
    /// The event's link in the log's hash chain (see [`crate::chain`]); none
    /// on an event written without one (not through an append).
    #[serde(default)]
    pub hash: Option<Hash>,
}

/// JSON text kept as text: an event's data and metadata go from the log to
/// the bus to the projections without being built into a tree and taken
/// apart again at every hop; whoever needs their contents parses them into
/// the type they want ([`RawJson::parse`]).
///
/// Two are equal when they hold the same JSON value, however written
/// (PostgreSQL's `jsonb` puts its own spaces and key order on what it
/// hands back).
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    /// The JSON text of `value`.
    pub fn of(value: &impl Serialize) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(Self)
    }

    /// Takes `text` as it is, once checked to be JSON.
    pub fn from_text(text: String) -> Result<Self, serde_json::Error> {
        RawValue::from_string(text).map(Self)
    }

    pub fn get(&self) -> &RawValue {
        &self.0
    }

    pub fn text(&self) -> &str {
        self.0.get()
    }

    /// The contents as `T`.
    pub fn parse<'a, T: Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }

    /// The actor an event's metadata records (read with every event).
    pub(crate) fn actor(&self) -> Result<Actor, serde_json::Error> {
        #[derive(Deserialize)]
        struct WithActor {
            actor: Actor,
        }
        self.parse::<WithActor>().map(|m| m.actor)
    }
}

/// Written as `json`/`jsonb`, the text as it is.
impl ToSql for RawJson {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        Json(self.get()).to_sql(ty, out)
    }

    fn accepts(ty: &Type) -> bool {
        <Json<&RawValue> as ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

impl From<Box<RawValue>> for RawJson {
    fn from(raw: Box<RawValue>) -> Self {
        Self(raw)
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        let value = |json: &Self| json.parse::<serde_json::Value>().ok();
        self.text() == other.text() || value(self).is_some_and(|v| Some(v) == value(other))
    }
}

impl std::fmt::Debug for RawJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

impl StoredEvent {
    /// The typed domain event, upcast to the current schema.
    pub fn decode<P: Payload>(&self) -> Result<Event<P>, StoreError> {
        let meta = ticketflow_domain::EventMeta {
            actor: self.actor.clone(),
            occurred_at: self.occurred_at,
        };
        let schema = u32::try_from(self.schema_version).unwrap_or(0);
        Ok(Event::from_stored(
            meta,
            &self.event_type,
            schema,
            self.data.get(),
        )?)
    }

    /// The event's data in its type's current layout and that layout's
    /// schema version: what readers outside the domain (`/history`, the
    /// feed) show. The stored row keeps the version it was written at.
    pub fn current_data(&self) -> Result<(i32, Cow<'_, RawValue>), StoreError> {
        let schema = u32::try_from(self.schema_version).unwrap_or(0);
        let current = upcast(&self.event_type, schema, self.data.get())?;
        let version = i32::try_from(current.schema_version).unwrap_or(i32::MAX);
        Ok((version, current.data))
    }
}

/// A point in a stream's past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    Version(u64),
    /// Inclusive: every event with `occurred_at` ≤ this time.
    Time(DateTime<Utc>),
}

/// A project as listed: the inline index written with its events.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectSummary {
    pub project_id: Uuid,
    pub key: String,
    pub name: String,
    pub statuses: Vec<Status>,
    pub created_at: DateTime<Utc>,
    pub role: Role,
}

#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    async fn load_project(&self, project_id: Uuid) -> Result<Loaded<Project>, StoreError>;

    async fn load_ticket(&self, ticket_id: Uuid) -> Result<Loaded<Ticket>, StoreError>;

    /// The ticket as it was at `as_of`; `None` before it existed.
    async fn load_ticket_as_of(
        &self,
        ticket_id: Uuid,
        as_of: AsOf,
    ) -> Result<Option<Loaded<Ticket>>, StoreError>;

    /// Appends if the stream is still at `before.version`, else
    /// [`StoreError::VersionConflict`]. A `ProjectCreated` with a taken key
    /// fails with [`StoreError::Taken`]`("project_key")`.
    /// The project as it was at `as_of`; `None` before it existed.
    async fn load_project_as_of(
        &self,
        project_id: Uuid,
        as_of: AsOf,
    ) -> Result<Option<Loaded<Project>>, StoreError>;

    async fn append_project(
        &self,
        append: Append<Project, ProjectEvent>,
    ) -> Result<Committed<Project>, StoreError>;

    /// The inbox of operator notices of one user (stream id: the user's id).
    async fn load_inbox(&self, user_id: Uuid) -> Result<Loaded<Inbox>, StoreError>;

    /// Appends to a user's inbox if it is still at `before.version`, else
    /// [`StoreError::VersionConflict`]. `project_id` must be
    /// [`ticketflow_domain::inbox::NO_PROJECT`].
    async fn append_inbox(
        &self,
        append: Append<Inbox, InboxEvent>,
    ) -> Result<Committed<Inbox>, StoreError>;

    /// Like [`EventStore::append_project`]; also assigns ticket numbers and
    /// the project's channel seq.
    async fn append_ticket(
        &self,
        append: Append<Ticket, TicketEvent>,
    ) -> Result<Committed<Ticket>, StoreError>;

    /// Like [`EventStore::append_ticket`], and only while the project is
    /// still at `project_version`, the state the events were decided against
    /// (its members, statuses); else [`StoreError::ProjectMoved`].
    async fn append_ticket_if_project_at(
        &self,
        append: Append<Ticket, TicketEvent>,
        project_version: u64,
    ) -> Result<Committed<Ticket>, StoreError>;

    /// One stream's events with version > `after_version`, in version order.
    async fn stream_events(
        &self,
        stream_id: Uuid,
        after_version: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// One project's events (tickets and members) after a position.
    async fn project_events(
        &self,
        project_id: Uuid,
        after_position: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// The events matching `filter` after a position, in position order.
    async fn filtered_events(
        &self,
        filter: &EventFilter,
        after_position: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// Every event after a position, in position order.
    async fn read_all(
        &self,
        after_position: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError>;

    /// The position of the newest committed event.
    async fn head_position(&self) -> Result<i64, StoreError>;

    /// The newest committed event's position and hash, as the log records
    /// them (PostgreSQL: its head row; SQLite: its last event).
    async fn chain_head(&self) -> Result<ChainHead, StoreError>;
    /// The project's newest board snapshot at or before `position`.
    async fn board_snapshot(
        &self,
        project_id: Uuid,
        position: i64,
    ) -> Result<Option<BoardSnapshot>, StoreError>;

    /// Keeps a board snapshot of the project; one already kept at its
    /// position stays (both hold the same board).
    async fn save_board_snapshot(
        &self,
        project_id: Uuid,
        snapshot: &BoardSnapshot,
    ) -> Result<(), StoreError>;

    /// The position of the project's first event that occurred after `time`,
    /// `None` when none did.
    async fn first_project_event_after(
        &self,
        project_id: Uuid,
        time: DateTime<Utc>,
    ) -> Result<Option<i64>, StoreError>;

    /// The caller's role in a project, `None` when not a member.
    async fn membership(&self, project_id: Uuid, user_id: Uuid)
        -> Result<Option<Role>, StoreError>;

    /// Projects the user is a member of, oldest first.
    async fn projects_of(&self, user_id: Uuid) -> Result<Vec<ProjectSummary>, StoreError>;
}
