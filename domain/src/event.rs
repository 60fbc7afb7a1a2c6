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

use crate::ticket::DescriptionChangedV1;

/// A user as events and messages name them. Usernames never change, so events
/// carry the name and readers need no lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "schemas", derive(schemars::JsonSchema))]
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

    /// Version of this event type's `data` layout, bumped with an upcaster
    /// ([`upcast`]) that reads the older layouts.
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
        payload_data(&self.payload)
    }

    /// Rebuilds an event from its stored parts, upcasting old schema versions.
    pub fn from_stored(
        meta: EventMeta,
        event_type: &str,
        schema_version: u32,
        data: &RawValue,
    ) -> Result<Self, serde_json::Error> {
        let data = upcast(event_type, schema_version, data)?.data;
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

/// A payload's `data` object, as stored: JSON text, cut out of the
/// payload's own serialisation (no JSON tree in between).
fn payload_data(payload: &impl Serialize) -> Result<Box<RawValue>, serde_json::Error> {
    #[derive(Deserialize)]
    struct Parts<'a> {
        // Payload enums are adjacently tagged structs: always an object.
        #[serde(borrow)]
        data: &'a RawValue,
    }
    let whole = serde_json::to_string(payload)?;
    let parts: Parts = serde_json::from_str(&whole)?;
    Ok(parts.data.to_owned())
}

/// An event's `data` in its type's current layout, and that layout's version.
#[derive(Debug)]
pub struct Upcast<'a> {
    pub schema_version: u32,
    pub data: Cow<'a, RawValue>,
}

/// Brings `data` written under an older schema version up to the current
/// one, on read: stored events are never rewritten (the log is what was
/// decided, and the hash chain covers it as stored). Data already current,
/// or of a type that never changed, comes back borrowed as it is.
///
/// - `TicketDescriptionChanged` 1 → 2: `mentions` renamed `added_mentions`
///   ([`crate::ticket::DescriptionChangedV1`]).
pub fn upcast<'a>(
    event_type: &str,
    schema_version: u32,
    data: &'a RawValue,
) -> Result<Upcast<'a>, serde_json::Error> {
    let current = match (event_type, schema_version) {
        ("TicketDescriptionChanged", 1) => {
            let v1: DescriptionChangedV1 = serde_json::from_str(data.get())?;
            Upcast {
                schema_version: 2,
                data: Cow::Owned(payload_data(&v1.upcast())?),
            }
        }
        _ => Upcast {
            schema_version,
            data: Cow::Borrowed(data),
        },
    };
    Ok(current)
}

impl<P: Payload> DomainEvent for Event<P> {
    fn event_type(&self) -> String {
        self.payload.event_type().to_string()
    }

    fn event_version(&self) -> String {
        self.payload.schema_version().to_string()
    }
}
