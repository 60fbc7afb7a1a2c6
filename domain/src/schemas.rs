//! JSON Schemas of stored events: one per event type and schema version,
//! describing the event's `data` as the store keeps it, generated from the
//! Rust types that (de)serialise it. The repository's `schemas/` holds them
//! (`<EventType>.v<N>.json` and `index.json`); the `schemas` test of this
//! crate regenerates them in memory and fails when the files are stale
//! (`UPDATE_SCHEMAS=1 cargo test -p ticketflow-domain --test schemas`
//! rewrites them).
//!
//! Old versions stay: a version some stored event may carry is described by
//! the type its upcaster reads (e.g. [`DescriptionChangedV1`]).

use std::collections::{BTreeMap, BTreeSet};

use schemars::{schema_for, JsonSchema};
use serde_json::{json, Map, Value};

use crate::ticket::DescriptionChangedV1;
use crate::{InboxPayload, ProjectPayload, TicketPayload};

/// Where JSON Schema's dialect is named in every file.
const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The schema of one event type's `data` at one schema version.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSchema {
    pub event_type: String,
    pub schema_version: u32,
    /// Whether new events of the type are stored at this version.
    pub current: bool,
    pub schema: Value,
}

impl EventSchema {
    /// `TicketCreated.v1.json`.
    pub fn file_name(&self) -> String {
        format!("{}.v{}.json", self.event_type, self.schema_version)
    }
}

/// Every event type's current schema and every older one still readable,
/// sorted by type and version.
pub fn event_schemas() -> Vec<EventSchema> {
    let mut all = Vec::new();
    all.extend(variants::<ProjectPayload>(|_| 1));
    all.extend(variants::<TicketPayload>(TicketPayload::schema_version_of));
    all.extend(variants::<InboxPayload>(|_| 1));
    all.push(older::<DescriptionChangedV1>("TicketDescriptionChanged", 1));
    all.sort_by(|a, b| (&a.event_type, a.schema_version).cmp(&(&b.event_type, b.schema_version)));
    all
}

/// `index.json`: each event type's versions, the current one and their files.
pub fn index(schemas: &[EventSchema]) -> Value {
    let mut types: BTreeMap<&str, Value> = BTreeMap::new();
    for s in schemas {
        let entry = types
            .entry(&s.event_type)
            .or_insert_with(|| json!({ "current": 0, "versions": {} }));
        if s.current {
            entry["current"] = json!(s.schema_version);
        }
        entry["versions"][s.schema_version.to_string()] = json!(s.file_name());
    }
    json!({
        "description": "JSON Schemas of ticketflow's stored events' `data`, per event type and schema_version. Generated from the domain types; do not edit.",
        "event_types": types,
    })
}

/// Every file of `schemas/`, name and text (pretty JSON, one final newline).
pub fn files() -> Vec<(String, String)> {
    let schemas = event_schemas();
    let text = |v: &Value| format!("{:#}\n", v);
    let mut files: Vec<(String, String)> = schemas
        .iter()
        .map(|s| (s.file_name(), text(&s.schema)))
        .collect();
    files.push(("index.json".to_string(), text(&index(&schemas))));
    files
}

/// One schema per variant of a payload enum (adjacently tagged: each
/// variant's schema is an object with a constant `type` and a `data`).
fn variants<P: JsonSchema>(version_of: fn(&str) -> u32) -> Vec<EventSchema> {
    let root = schema_for!(P).to_value();
    let defs = root.get("$defs").cloned().unwrap_or_default();
    let Some(Value::Array(variants)) = root.get("oneOf") else {
        panic!("a payload enum's schema is a oneOf of its variants: {root:#}");
    };
    variants
        .iter()
        .map(|variant| {
            let event_type = variant["properties"]["type"]["const"]
                .as_str()
                .unwrap_or_else(|| panic!("a variant without a constant type: {variant:#}"))
                .to_string();
            let schema_version = version_of(&event_type);
            let title = format!("{event_type} v{schema_version}");
            let schema = standalone(&title, variant["properties"]["data"].clone(), &defs);
            EventSchema {
                event_type,
                schema_version,
                current: true,
                schema,
            }
        })
        .collect()
}

/// The schema of an older version, from the type its upcaster reads.
fn older<T: JsonSchema>(event_type: &str, schema_version: u32) -> EventSchema {
    let mut root = schema_for!(T).to_value();
    let defs = root
        .as_object_mut()
        .and_then(|o| o.remove("$defs"))
        .unwrap_or_default();
    let title = format!("{event_type} v{schema_version}");
    EventSchema {
        event_type: event_type.to_string(),
        schema_version,
        current: false,
        schema: standalone(&title, root, &defs),
    }
}

/// `data` as a document of its own: the dialect, a title, and the
/// definitions it refers to (directly or through one another).
fn standalone(title: &str, data: Value, defs: &Value) -> Value {
    let mut doc = Map::new();
    doc.insert("$schema".into(), json!(DIALECT));
    doc.insert("title".into(), json!(title));
    if let Value::Object(fields) = data {
        for (k, v) in fields {
            if k != "$schema" && k != "title" {
                doc.insert(k, v);
            }
        }
    }
    let mut used = BTreeMap::new();
    let mut pending: Vec<String> = references(&Value::Object(doc.clone()));
    let mut seen = BTreeSet::new();
    while let Some(name) = pending.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(def) = defs.get(&name) {
            pending.extend(references(def));
            used.insert(name, def.clone());
        }
    }
    if !used.is_empty() {
        doc.insert("$defs".into(), json!(used));
    }
    Value::Object(doc)
}

/// The definitions `value` refers to (`"$ref": "#/$defs/<name>"`).
fn references(value: &Value) -> Vec<String> {
    match value {
        Value::Object(fields) => fields
            .iter()
            .flat_map(|(k, v)| match (k.as_str(), v) {
                ("$ref", Value::String(r)) => r
                    .strip_prefix("#/$defs/")
                    .map(|name| vec![name.to_string()])
                    .unwrap_or_default(),
                _ => references(v),
            })
            .collect(),
        Value::Array(items) => items.iter().flat_map(references).collect(),
        _ => Vec::new(),
    }
}
