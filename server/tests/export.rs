//! `ticketflow events export` on a log written through the HTTP API, in
//! either mode: each format read back (NDJSON and CSV as text, Parquet with
//! the `parquet` crate) equals the project's events feed, NDJSON lines are
//! canonical, and the filters select what they say.

use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::process::{Command, Output};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampMicrosecondType};
use arrow_array::Array;
use arrow_schema::{DataType, TimeUnit};
use chrono::DateTime;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{json, Value};
use ticketflow_store::chain::write_canonical;
use ticketflow_testkit::{setup, Setup, TestServer};

/// `ticketflow events export ARGS` against the test server's log.
fn export(server: &TestServer, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ticketflow"));
    command
        .args(["events", "export"])
        .args(args)
        .env_remove("TICKETFLOW_DATA_DIR")
        .env("RUST_LOG", "warn");
    match (server.database_url(), server.backend.data_dir()) {
        (Some(url), _) => command.env("DATABASE_URL", url),
        (None, Some(dir)) => {
            let events_db = dir.events_db();
            let home = events_db.parent().expect("the data directory");
            command
                .env_remove("DATABASE_URL")
                .arg("--data-dir")
                .arg(home)
        }
        (None, None) => panic!("a test server has a database or a data directory"),
    };
    command.output().expect("run ticketflow")
}

fn succeeded(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A project with members, tickets changed, assigned, commented, deleted.
async fn busy_project(s: &Setup) {
    let bob = s.member("bob").await;
    for i in 0..3 {
        let ticket = s.ticket(&format!("ticket \"{i}\" é")).await;
        let path = format!("/api/tickets/{ticket}");
        s.patch(
            &path,
            json!({ "assignee_id": bob.id, "status_id": 2, "labels": ["b", "a"] }),
        )
        .await;
        s.post(&format!("{path}/comments"), json!({ "body": "@bob\nlook" }))
            .await;
        if i == 2 {
            s.server.delete(&path, &s.alice.token).await;
        }
    }
}

/// The project's feed, as NDJSON items.
async fn feed(s: &Setup, query: &str) -> Vec<Value> {
    let path = format!("/api/projects/{}/events{query}", s.project_id);
    s.server.list_all(&path, &s.alice.token, 200).await
}

/// Checks an exported event (its fields as JSON values) against a feed item.
fn same_event(exported: &Value, item: &Value) {
    for key in [
        "event_id",
        "hash",
        "position",
        "schema_version",
        "version",
        "data",
    ] {
        assert_eq!(exported[key], item[key], "{key} of {item}");
    }
    assert_eq!(exported["type"], item["type"]);
    let time =
        |v: &Value| DateTime::parse_from_rfc3339(v.as_str().expect("a time")).expect("RFC 3339");
    assert_eq!(time(&exported["occurred_at"]), time(&item["occurred_at"]));
    assert_eq!(exported["metadata"]["actor"], item["actor"]);
}

fn ndjson(path: &Path) -> Vec<(String, Value)> {
    std::fs::read_to_string(path)
        .expect("the export")
        .lines()
        .map(|line| {
            (
                line.to_string(),
                serde_json::from_str(line).expect("one JSON object per line"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_format_reads_back_as_the_feed() {
    let s = setup().await;
    busy_project(&s).await;
    let items = feed(&s, "").await;
    assert_eq!(items.len(), 2 + 1 + 3 * 5 + 1, "{items:?}");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    for (format, name) in [
        ("ndjson", "e.ndjson"),
        ("csv", "e.csv"),
        ("parquet", "e.parquet"),
    ] {
        let out = export(
            &s.server,
            &[
                "--format",
                format,
                "--project",
                &s.project_id,
                "--output",
                &file(name),
            ],
        );
        succeeded(&out);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(
            said.contains(&format!("exported {} events", items.len())),
            "{said}"
        );
    }

    let lines = ndjson(&dir.path().join("e.ndjson"));
    assert_eq!(lines.len(), items.len());
    for ((line, exported), item) in lines.iter().zip(&items) {
        same_event(exported, item);
        assert_eq!(exported["project_id"], json!(s.project_id));
        let mut canonical = Vec::new();
        write_canonical(&mut canonical, exported).expect("canonical");
        assert_eq!(line.as_bytes(), canonical, "lines are canonical");
    }

    let mut csv = csv::Reader::from_path(dir.path().join("e.csv")).expect("the CSV");
    let rows: Vec<HashMap<String, String>> = csv.deserialize().map(|r| r.expect("a row")).collect();
    assert_eq!(rows.len(), items.len());
    for (row, (_, exported)) in rows.iter().zip(&lines) {
        let as_json: Value = row
            .iter()
            .map(|(k, v)| {
                let value = match k.as_str() {
                    "data" | "metadata" => serde_json::from_str(v).expect("JSON text"),
                    "seq" | "hash" if v.is_empty() => Value::Null,
                    "position" | "schema_version" | "seq" | "version" => {
                        json!(v.parse::<i64>().expect("int"))
                    }
                    _ => json!(v),
                };
                (k.clone(), value)
            })
            .collect();
        assert_eq!(&as_json, exported);
    }

    let parquet = File::open(dir.path().join("e.parquet")).expect("the Parquet file");
    let reader = ParquetRecordBatchReaderBuilder::try_new(parquet)
        .expect("Parquet")
        .build()
        .expect("reader");
    let mut read = 0;
    for batch in reader {
        let batch = batch.expect("a batch");
        let schema = batch.schema();
        let ty = |name: &str| {
            schema
                .field_with_name(name)
                .expect(name)
                .data_type()
                .clone()
        };
        assert_eq!(ty("position"), DataType::Int64);
        assert_eq!(ty("schema_version"), DataType::Int32);
        assert_eq!(
            ty("occurred_at"),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        let column = |name: &str| batch.column_by_name(name).expect(name).clone();
        let (positions, seqs) = (column("position"), column("seq"));
        let (positions, seqs) = (
            positions.as_primitive::<Int64Type>(),
            seqs.as_primitive::<Int64Type>(),
        );
        let times = column("occurred_at");
        let times = times.as_primitive::<TimestampMicrosecondType>();
        let versions = column("schema_version");
        let versions = versions.as_primitive::<Int32Type>();
        let (data, types, ids) = (column("data"), column("type"), column("event_id"));
        for i in 0..batch.num_rows() {
            let (_, exported) = &lines[read + i];
            assert_eq!(json!(positions.value(i)), exported["position"]);
            assert_eq!(seqs.is_null(i), exported["seq"].is_null());
            assert_eq!(json!(versions.value(i)), exported["schema_version"]);
            let at = DateTime::from_timestamp_micros(times.value(i)).expect("a time");
            assert_eq!(
                at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                exported["occurred_at"]
            );
            let data: Value = serde_json::from_str(data.as_string::<i32>().value(i)).expect("JSON");
            assert_eq!(data, exported["data"]);
            assert_eq!(json!(types.as_string::<i32>().value(i)), exported["type"]);
            assert_eq!(json!(ids.as_string::<i32>().value(i)), exported["event_id"]);
        }
        read += batch.num_rows();
    }
    assert_eq!(read, items.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn filters_select_types_and_ranges_of_positions_and_times() {
    let s = setup().await;
    busy_project(&s).await;
    let other = s.server.project(&s.alice, "OTHER").await;
    s.server
        .ticket(
            &s.alice,
            other["id"].as_str().expect("id"),
            json!({ "title": "elsewhere" }),
        )
        .await;
    let items = feed(&s, "").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("e.ndjson");
    let exported = |args: &[&str]| {
        let mut all = vec![
            "--project",
            &s.project_id,
            "--output",
            out.to_str().expect("path"),
        ];
        all.extend_from_slice(args);
        succeeded(&export(&s.server, &all));
        ndjson(&out)
            .into_iter()
            .map(|(_, v)| v["event_id"].clone())
            .collect::<Vec<_>>()
    };
    let expected = |keep: &dyn Fn(&Value) -> bool| {
        items
            .iter()
            .filter(|i| keep(i))
            .map(|i| i["event_id"].clone())
            .collect::<Vec<_>>()
    };
    let position = |i: usize| items[i]["position"].as_i64().expect("position");
    let (from, to) = (position(4), position(12));
    let until_time = items[12]["occurred_at"].as_str().expect("time").to_string();
    let kinds = "TicketCreated,CommentAdded";
    let is_kind =
        |i: &Value| ["TicketCreated", "CommentAdded"].contains(&i["type"].as_str().unwrap_or(""));
    let at = |i: &Value| i["position"].as_i64().unwrap_or(0);
    let time =
        |i: &Value| DateTime::parse_from_rfc3339(i["occurred_at"].as_str().unwrap_or("")).ok();
    let until = DateTime::parse_from_rfc3339(&until_time).ok();

    assert_eq!(exported(&["--types", kinds]), expected(&is_kind));
    assert_eq!(
        exported(&["--since", &from.to_string()]),
        expected(&|i| at(i) >= from)
    );
    assert_eq!(
        exported(&["--until", &to.to_string()]),
        expected(&|i| at(i) <= to)
    );
    assert_eq!(
        exported(&["--until", &until_time]),
        expected(&|i| time(i) <= until)
    );
    assert_eq!(
        exported(&[
            "--types",
            kinds,
            "--since",
            &from.to_string(),
            "--until",
            &until_time
        ]),
        expected(&|i| is_kind(i) && at(i) >= from && time(i) <= until)
    );
    assert!(exported(&["--since", &until_time, "--until", &from.to_string()]).is_empty());

    // Without --project: the whole log, both projects.
    succeeded(&export(
        &s.server,
        &["--output", out.to_str().expect("path")],
    ));
    let everything = ndjson(&out);
    assert!(everything.len() > items.len());
    assert!(everything
        .windows(2)
        .all(|w| w[0].1["position"].as_i64() < w[1].1["position"].as_i64()));

    for (args, says) in [
        (["--types", "TicketCreated,Nope"], "Nope"),
        (["--types", ""], "types"),
        (["--since", "yesterday"], "RFC 3339"),
        (["--until", "1.5"], "RFC 3339"),
        (["--format", "xlsx"], "xlsx"),
        (["--project", "not-a-uuid"], "project"),
    ] {
        let refused = export(&s.server, &args);
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{args:?} was accepted");
        assert!(said.contains(says), "{args:?}: {said}");
    }
}
