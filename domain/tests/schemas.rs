//! `schemas/` matches the code: the event schemas regenerated from the
//! domain types equal the committed files, none missing, none left over.
//! `UPDATE_SCHEMAS=1 cargo test -p ticketflow-domain --test schemas`
//! rewrites them. And every kind of event the domain stores validates
//! against its schema, an old (version 1) description change included.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{json, Value};
use ticketflow_domain::schemas::{event_schemas, files};
use ticketflow_domain::{Payload, TicketPayload};

const REWRITE: &str = "UPDATE_SCHEMAS=1 cargo test -p ticketflow-domain --test schemas";

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

fn committed() -> BTreeSet<String> {
    std::fs::read_dir(dir())
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_committed_schemas_match_the_code() {
    let generated = files();
    if std::env::var_os("UPDATE_SCHEMAS").is_some() {
        std::fs::create_dir_all(dir()).expect("create schemas/");
        for stale in committed() {
            std::fs::remove_file(dir().join(stale)).expect("remove an old schema");
        }
        for (name, text) in &generated {
            std::fs::write(dir().join(name), text).expect("write a schema");
        }
    }
    let names: BTreeSet<String> = generated.iter().map(|(n, _)| n.clone()).collect();
    let mut stale: Vec<String> = generated
        .iter()
        .filter(|(name, text)| {
            std::fs::read_to_string(dir().join(name)).ok().as_ref() != Some(text)
        })
        .map(|(name, _)| format!("schemas/{name} (differs or is missing)"))
        .collect();
    stale.extend(
        committed()
            .difference(&names)
            .map(|name| format!("schemas/{name} (no event type has it)")),
    );
    assert!(
        stale.is_empty(),
        "the event schemas are stale:\n  {}\nrewrite them with `{REWRITE}`",
        stale.join("\n  ")
    );
}

#[test]
fn every_event_type_has_one_current_schema_at_its_schema_version() {
    let schemas = event_schemas();
    let current: Vec<(&str, u32)> = schemas
        .iter()
        .filter(|s| s.current)
        .map(|s| (s.event_type.as_str(), s.schema_version))
        .collect();
    assert_eq!(current.len(), 15, "{current:?}");
    assert!(current.contains(&("TicketDescriptionChanged", 2)));
    assert!(current.contains(&("TicketCreated", 1)));
    let old: Vec<(&str, u32)> = schemas
        .iter()
        .filter(|s| !s.current)
        .map(|s| (s.event_type.as_str(), s.schema_version))
        .collect();
    assert_eq!(old, [("TicketDescriptionChanged", 1)]);
}

fn validator(event_type: &str, version: u32) -> jsonschema::Validator {
    let schema = event_schemas()
        .into_iter()
        .find(|s| s.event_type == event_type && s.schema_version == version)
        .unwrap_or_else(|| panic!("no schema for {event_type} v{version}"));
    jsonschema::validator_for(&schema.schema).expect("a valid JSON Schema")
}

#[test]
fn the_schemas_accept_what_the_domain_stores_and_refuse_other_shapes() {
    let payload = TicketPayload::TicketDescriptionChanged {
        description: "ask @bob".into(),
        added_mentions: vec![ticketflow_testkit::cast::bob()],
    };
    let data: Value = serde_json::to_value(&payload).expect("JSON")["data"].clone();
    let v2 = validator("TicketDescriptionChanged", payload.schema_version());
    assert!(v2.is_valid(&data), "{data}");
    let v1 = validator("TicketDescriptionChanged", 1);
    assert!(!v1.is_valid(&data), "version 1 has no added_mentions");
    // As version 1 stored it (server/tests/fixtures, captured from the v1 code).
    let old =
        json!({"description": "D", "mentions": [{"id": uuid::Uuid::nil(), "username": "bob"}]});
    assert!(v1.is_valid(&old));
    assert!(!v2.is_valid(&old));
    let priority = validator("TicketPriorityChanged", 1);
    assert!(priority.is_valid(&json!({"priority": "urgent"})));
    assert!(!priority.is_valid(&json!({"priority": "whenever"})));
}

#[test]
fn a_stored_event_off_its_schema_is_named_with_its_error() {
    use ticketflow_testkit::schemas::{mismatch, StoredShape};
    let shape = |event_type: &str, schema_version: i64, data: &str| StoredShape {
        position: 7,
        event_type: event_type.into(),
        schema_version,
        data: data.into(),
    };
    let v1 = r#"{"description": "D", "mentions": []}"#;
    assert_eq!(mismatch(&shape("TicketDescriptionChanged", 1, v1)), None);
    let wrong = mismatch(&shape("TicketDescriptionChanged", 2, v1)).expect("v1 data under v2");
    assert!(
        wrong.starts_with("event at position 7 (TicketDescriptionChanged v2): ")
            && wrong.contains("added_mentions"),
        "{wrong}"
    );
    let unknown = mismatch(&shape("TicketRenamed", 1, "{}")).expect("no such type");
    assert!(unknown.contains("no schema"), "{unknown}");
}
