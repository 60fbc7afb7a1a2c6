//! The event envelope shared by both aggregates.
//!
//! An [`Event`] is what an aggregate decided plus who decided it and when. The
//! store adds what only it can know (event id, position, version, seq) when it
//! records the event.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::de::value::MapDeserializer;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

/// A user as events and messages name them. Usernames never change, so events
/// carry the name and readers need no lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Actor {
    pub id: Uuid,
    pub username: String,
}

/// Who issued a command and when; copied onto every event the command yields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMeta {
    pub actor: Actor,
    pub occurred_at: DateTime<Utc>,
}

/// The typed body of an event: a serde enum whose variant names are the stable
/// event type names, serialised as `{"type": ..., "data": {...}}`.
pub trait Payload:
    Serialize + DeserializeOwned + Clone + PartialEq + std::fmt::Debug + Send + Sync
{
    /// The stable PascalCase event type name.
    fn event_type(&self) -> &'static str;

    /// Version of this event type's `data` layout, bumped with an upcaster.
    fn schema_version(&self) -> u32 {
        1
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event<P> {
    pub meta: EventMeta,
    pub payload: P,
}

impl<P: Payload> Event<P> {
    pub fn new(meta: &EventMeta, payload: P) -> Self {
        Self {
            meta: meta.clone(),
            payload,
        }
    }

    /// The payload's `data` object, as stored: JSON text, cut out of the
    /// payload's own serialisation (no JSON tree in between).
    pub fn data(&self) -> Result<Box<RawValue>, serde_json::Error> {
        #[derive(Deserialize)]
        struct Parts<'a> {
            // Payload enums are adjacently tagged structs: always an object.
            #[serde(borrow)]
            data: &'a RawValue,
        }
        let whole = serde_json::to_string(&self.payload)?;
        let parts: Parts = serde_json::from_str(&whole)?;
        Ok(parts.data.to_owned())
    }

    /// Rebuilds an event from its stored parts, upcasting old schema versions.
    pub fn from_stored(
        meta: EventMeta,
        event_type: &str,
        schema_version: u32,
        data: &RawValue,
    ) -> Result<Self, serde_json::Error> {
        let data = upcast(event_type, schema_version, data);
        // The payload's tag first, then its data, read where they lie: in a
        // JSON object the keys come sorted ("data" before "type"), which made
        // serde buffer the whole data before it knew the variant, and the
        // object had to be built from a copy of the data.
        let tag = serde_json::value::to_raw_value(event_type)?;
        let fields = [("type", &*tag), ("data", &*data)];
        let payload = P::deserialize(MapDeserializer::new(fields.into_iter()))?;
        Ok(Self { meta, payload })
    }
}

/// Brings `data` written under an older schema version up to the current one.
/// Every event type is at version 1 so far; when one changes, its conversion
/// goes here and old events stay readable.
pub fn upcast<'a>(
    _event_type: &str,
    _schema_version: u32,
    data: &'a RawValue,
) -> Cow<'a, RawValue> {
    Cow::Borrowed(data)
}

impl<P: Payload> DomainEvent for Event<P> {
    fn event_type(&self) -> String {
        self.payload.event_type().to_string()
    }

    fn event_version(&self) -> String {
        self.payload.schema_version().to_string()
    }
}
