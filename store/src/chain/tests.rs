use std::io::Write;
use std::process::{Command, Stdio};

use chrono::TimeZone;
use ticketflow_domain::event::Actor;

use super::*;
use crate::event_store::RawJson;

fn raw(text: &str) -> RawJson {
    RawJson::from_text(text.to_string()).expect("JSON")
}

fn event(position: i64, data: &str, seq: Option<i64>) -> StoredEvent {
    let actor = Actor {
        id: Uuid::from_u128(7),
        username: "alice".into(),
    };
    StoredEvent {
        position,
        event_id: Uuid::from_u128(0xA1B2_C3D4_0000_0000_0000_0000_0000_0000 + position as u128),
        stream_id: Uuid::from_u128(0xFEED),
        stream_type: "ticket".into(),
        project_id: Uuid::from_u128(0xBEEF),
        version: position,
        seq,
        event_type: "TicketCreated".into(),
        schema_version: 1,
        data: raw(data),
        // Stored metadata in PostgreSQL's jsonb order and spacing.
        metadata: raw(
            r#"{"actor": {"id": "00000000-0000-0000-0000-000000000007", "username": "alice"}, "causation_id": null, "correlation_id": "c"}"#,
        ),
        actor,
        occurred_at: Utc
            .timestamp_opt(1_796_644_603, 123_456_789)
            .single()
            .expect("time"),
        hash: None,
    }
}

/// A log of `events`, chained as an append would.
fn chained(mut events: Vec<StoredEvent>) -> Vec<StoredEvent> {
    let mut prev = Hash::GENESIS;
    for e in &mut events {
        e.hash = Some(event_hash(&prev, e).expect("hash"));
        prev = e.hash.expect("just set");
    }
    events
}

fn head_of(events: &[StoredEvent]) -> ChainHead {
    let last = events.last().expect("events");
    ChainHead {
        position: last.position,
        hash: last.hash,
    }
}

fn verify(events: &[StoredEvent], head: &ChainHead) -> Result<Verified, Break> {
    let mut verifier = Verifier::new(1, Hash::GENESIS);
    for e in events {
        verifier.push(e)?;
    }
    verifier.finish(head)
}

#[test]
fn the_canonical_form_sorts_keys_at_every_depth_and_writes_no_whitespace() {
    let e = event(
        3,
        r#"{"z": 1, "a": {"y": [{"b": 2, "a": 1}], "x": null}, "é": true, "m": "v"}"#,
        None,
    );
    let text = String::from_utf8(canonical_bytes(&e).expect("canonical")).expect("UTF-8");
    assert_eq!(
        text,
        concat!(
            r#"{"data":{"a":{"x":null,"y":[{"a":1,"b":2}]},"m":"v","z":1,"é":true},"#,
            r#""event_id":"a1b2c3d4-0000-0000-0000-000000000003","#,
            r#""metadata":{"actor":{"id":"00000000-0000-0000-0000-000000000007","username":"alice"},"causation_id":null,"correlation_id":"c"},"#,
            r#""occurred_at":"2026-12-07T11:56:43.123456Z","position":3,"#,
            r#""project_id":"00000000-0000-0000-0000-00000000beef","schema_version":1,"seq":null,"#,
            r#""stream_id":"00000000-0000-0000-0000-00000000feed","stream_type":"ticket","#,
            r#""type":"TicketCreated","version":3}"#,
        )
    );
}

#[test]
fn strings_are_escaped_as_serde_json_escapes_them_and_seq_is_a_number() {
    let e = event(
        1,
        r#"{"s": "quote \" back \\ tab \t nl \n ctl \u0001 del \u007f sep \u2028 é 😀 \/"}"#,
        Some(42),
    );
    let text = String::from_utf8(canonical_bytes(&e).expect("canonical")).expect("UTF-8");
    assert!(
        text.starts_with(
            "{\"data\":{\"s\":\"quote \\\" back \\\\ tab \\t nl \\n ctl \\u0001 del \u{7f} sep \u{2028} é 😀 /\"}"
        ),
        "{text}"
    );
    assert!(text.contains(",\"seq\":42,"), "{text}");
}

#[test]
fn the_same_value_however_stored_gives_the_same_bytes() {
    let compact = event(1, r#"{"b":1,"a":"x"}"#, None);
    let spaced = event(1, "{ \"a\" : \"\\u0078\",\n \"b\" : 1 }", None);
    assert_eq!(
        canonical_bytes(&compact).expect("canonical"),
        canonical_bytes(&spaced).expect("canonical")
    );
}

#[test]
fn hashes_chain_from_the_genesis_hash() {
    let events = chained(vec![event(1, "{}", Some(1)), event(2, "{}", Some(2))]);
    let first = next_hash(&Hash::GENESIS, &canonical_bytes(&events[0]).expect("bytes"));
    assert_eq!(events[0].hash, Some(first));
    let second = next_hash(&first, &canonical_bytes(&events[1]).expect("bytes"));
    assert_eq!(events[1].hash, Some(second));
    assert_ne!(first, second);
    let shown = first.to_string();
    assert_eq!(shown.len(), 64);
    assert_eq!(shown.parse::<Hash>().expect("hex"), first);
    assert_eq!(
        serde_json::to_string(&first).expect("json"),
        format!("\"{shown}\"")
    );
}

fn log() -> Vec<StoredEvent> {
    chained((1..=5).map(|p| event(p, r#"{"n": 1}"#, Some(p))).collect())
}

#[test]
fn an_intact_log_verifies_to_its_head() {
    let events = log();
    let verified = verify(&events, &head_of(&events)).expect("intact");
    assert_eq!(verified.events, 5);
    assert_eq!(verified.position, 5);
    assert_eq!(Some(verified.hash), events[4].hash);
}

#[test]
fn an_altered_event_is_named() {
    let mut events = log();
    events[2].data = raw(r#"{"n": 2}"#);
    let head = head_of(&events);
    assert_eq!(verify(&events, &head), Err(Break::Altered { position: 3 }));
}

#[test]
fn a_removed_event_is_named() {
    let mut events = log();
    events.remove(1);
    let head = head_of(&events);
    assert_eq!(
        verify(&events, &head),
        Err(Break::Removed {
            position: 2,
            resumes_at: 3
        })
    );
}

#[test]
fn an_inserted_event_is_named() {
    let mut events = log();
    // Room made at 3 by moving the later events up one.
    for e in &mut events[2..] {
        e.position += 1;
    }
    let mut forged = event(3, r#"{"n": 9}"#, Some(3));
    forged.hash = events[1].hash;
    events.insert(2, forged);
    let head = head_of(&events);
    assert_eq!(verify(&events, &head), Err(Break::Inserted { position: 3 }));
    // Without a hash at all.
    events[2].hash = None;
    assert_eq!(
        verify(&events, &head),
        Err(Break::Unchained { position: 3 })
    );
}

#[test]
fn a_repeated_position_and_a_short_tail_are_named() {
    let mut events = log();
    events.insert(2, events[1].clone());
    let head = head_of(&events);
    assert_eq!(verify(&events, &head), Err(Break::Repeated { position: 2 }));

    let events = log();
    let recorded = head_of(&events);
    let short = &events[..4];
    assert!(matches!(
        verify(short, &recorded),
        Err(Break::Head { position: 5, .. })
    ));
}

#[test]
fn verifying_from_a_position_chains_from_the_hash_before_it() {
    let events = log();
    let mut verifier = Verifier::new(3, events[1].hash.expect("hash"));
    for e in &events[2..] {
        verifier.push(e).expect("intact");
    }
    let verified = verifier.finish(&head_of(&events)).expect("intact");
    assert_eq!((verified.events, verified.position), (3, 5));
}

/// The documented Python script (standard library only) recomputes the same
/// chain from the canonical objects, so the form is what docs/audit.md says.
#[test]
fn the_python_script_recomputes_the_same_hashes() {
    let mut events = log();
    events[1].data = raw(
        r#"{"title": "Fix \"login\" \u00e9 😀 \u0007", "nested": {"b": [1, {"d": 4, "c": 3}], "a": null}}"#,
    );
    events[3].seq = None;
    let events = chained(events);
    let mut lines = Vec::new();
    for e in &events {
        let mut object: serde_json::Map<String, Value> =
            serde_json::from_slice(&canonical_bytes(e).expect("canonical")).expect("object");
        object.insert(
            "hash".into(),
            Value::String(e.hash.expect("hash").to_string()),
        );
        serde_json::to_writer(&mut lines, &object).expect("line");
        lines.push(b'\n');
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/verify_chain.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&lines)
        .expect("write");
    let output = child.wait_with_output().expect("python3 ends");
    let head = events.last().and_then(|e| e.hash).expect("head");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("verified 5 events, head 5 hash {head}")
    );
}

/// What chaining adds to an append, per event: the canonical form of a
/// typical ticket event and its hash. A measurement, not a check: run with
/// `cargo test --release -p ticketflow-store --lib chain_cost -- --ignored --nocapture`.
#[test]
#[ignore]
fn chain_cost() {
    let e = event(
        1,
        r#"{"ticket_id": "0190f5a2-6c1e-7d2a-9b3c-4d5e6f708192", "number": 17, "key": "PROJ-17",
            "title": "Fix the login page's redirect after a password change",
            "description": "Users land on a 404 after changing their password from the settings page.",
            "status_id": 1, "priority": "high", "assignee_id": null, "mentions": []}"#,
        Some(17),
    );
    let rounds = 200_000u32;
    let started = std::time::Instant::now();
    let mut prev = Hash::GENESIS;
    for _ in 0..rounds {
        prev = event_hash(&prev, &e).expect("hash");
    }
    let per_event = started.elapsed() / rounds;
    println!(
        "canonical form + SHA-256: {per_event:?} per event ({} canonical bytes)",
        canonical_bytes(&e).expect("bytes").len()
    );
}
