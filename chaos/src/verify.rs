//! The verifier: reads PostgreSQL with SQL and JetStream with async-nats
//! directly, never through the server's crates, and lists every violation.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use serde::Serialize;
use tokio_postgres::Client as Db;
use uuid::Uuid;

use crate::load::{Answer, Outcome};
use crate::sockets::{Channel, Client, Log};

/// Every violation found, by check.
#[derive(Debug, Default, Serialize)]
pub struct Findings {
    pub commands: Vec<String>,
    /// The log's hash chain, as `ticketflow audit verify` finds it.
    pub chain: Vec<String>,
    pub stream: Vec<String>,
    pub read_models: Vec<String>,
    pub sockets: Vec<String>,
    pub faults: Vec<String>,
}

impl Findings {
    pub fn total(&self) -> usize {
        self.commands.len()
            + self.chain.len()
            + self.stream.len()
            + self.read_models.len()
            + self.sockets.len()
            + self.faults.len()
    }
}

/// Markers (`CHAOS` + 16 hex digits) in a text, each once.
fn markers(text: &str) -> Vec<&str> {
    let mut found: Vec<&str> = text
        .match_indices("CHAOS")
        .filter_map(|(i, _)| text.get(i..i + 21))
        .filter(|m| m[5..].bytes().all(|b| b.is_ascii_hexdigit()))
        .collect();
    found.sort_unstable();
    found.dedup();
    found
}

/// Every command answered 2xx has its marked events in the log exactly once;
/// one refused has none; one never answered has all or none; and no marked
/// event belongs to a command nobody sent.
pub async fn commands(db: &Db, outcomes: &[Outcome]) -> anyhow::Result<Vec<String>> {
    let mut in_log: HashMap<String, usize> = HashMap::new();
    for row in db.query("SELECT data::text FROM events", &[]).await? {
        let data: String = row.get(0);
        for marker in markers(&data) {
            *in_log.entry(marker.to_string()).or_default() += 1;
        }
    }
    let mut violations = Vec::new();
    for outcome in outcomes {
        let found = in_log.remove(&outcome.marker).unwrap_or(0);
        let want = outcome.kind.marked_events();
        let ok = match outcome.answer {
            Answer::Applied(_) => found == want,
            Answer::Refused(_) => found == 0,
            Answer::Unknown => found == 0 || found == want,
        };
        if !ok {
            violations.push(format!(
                "{:?} {} sent at {:.1} s, answered {:?} after {} attempt(s): {found} marked event(s) in the log, expected {}",
                outcome.kind,
                outcome.marker,
                outcome.at_s,
                outcome.answer,
                outcome.attempts,
                match outcome.answer {
                    Answer::Applied(_) => want.to_string(),
                    Answer::Refused(_) => "0".to_string(),
                    Answer::Unknown => format!("0 or {want}"),
                }
            ));
        }
    }
    for (marker, n) in in_log {
        violations.push(format!(
            "{n} event(s) marked {marker}, a command never sent"
        ));
    }
    Ok(violations)
}

/// The log's positions are 1..head, and the stream holds exactly those, in
/// order, each message the event at its position.
pub async fn stream(db: &Db, nats_url: &str, name: &str) -> anyhow::Result<Vec<String>> {
    let mut violations = Vec::new();
    let rows = db
        .query(
            "SELECT position, event_id FROM events ORDER BY position",
            &[],
        )
        .await?;
    let log: Vec<(i64, Uuid)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    for (i, (position, _)) in log.iter().enumerate() {
        if *position != i as i64 + 1 {
            violations.push(format!("the log has position {position} at row {}", i + 1));
            break;
        }
    }
    let servers = nats_url
        .split(',')
        .map(str::parse)
        .collect::<Result<Vec<async_nats::ServerAddr>, _>>()?;
    let client = async_nats::connect(servers).await?;
    let js = async_nats::jetstream::new(client);
    let mut stream = js.get_stream(name).await.context("the event stream")?;
    let info = stream.info().await?.clone();
    let (first, last) = (info.state.first_sequence, info.state.last_sequence);
    if first > 1 || last != log.len() as u64 || info.state.messages != log.len() as u64 {
        violations.push(format!(
            "the stream holds sequences {first}..={last} ({} messages); the log has {} events",
            info.state.messages,
            log.len()
        ));
    }
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await?;
    let mut messages = consumer.messages().await?;
    for (i, (position, event_id)) in log.iter().enumerate() {
        let next = tokio::time::timeout(Duration::from_secs(10), messages.next()).await;
        let Ok(Some(Ok(message))) = next else {
            violations.push(format!("the stream ends after {i} messages"));
            break;
        };
        let header = message
            .headers
            .as_ref()
            .and_then(|h| h.get("Ticketflow-Position"))
            .map(|v| v.as_str().to_string());
        let body: serde_json::Value = serde_json::from_slice(&message.payload).unwrap_or_default();
        let same_event = body["event_id"].as_str() == Some(event_id.to_string().as_str());
        if header.as_deref() != Some(position.to_string().as_str()) || !same_event {
            violations.push(format!(
                "stream message {} is position {header:?}, event {}; the log's position {position} is event {event_id}",
                i + 1,
                body["event_id"]
            ));
            if violations.len() > 20 {
                break;
            }
        }
    }
    Ok(violations)
}

/// Every `rm_*` table of `live` equals, row for row, the one in `rebuilt`.
pub async fn read_models(live: &Db, rebuilt: &Db) -> anyhow::Result<Vec<String>> {
    let tables = live
        .query(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' \
             AND tablename LIKE 'rm\\_%' ORDER BY tablename",
            &[],
        )
        .await?;
    let mut violations = Vec::new();
    for row in tables {
        let table: String = row.get(0);
        let query = format!("SELECT t::text FROM {table} t ORDER BY 1");
        let (a, b) = (rows(live, &query).await?, rows(rebuilt, &query).await?);
        if a != b {
            let only_live = a.iter().filter(|r| b.binary_search(r).is_err()).count();
            let only_rebuilt = b.iter().filter(|r| a.binary_search(r).is_err()).count();
            let example = a
                .iter()
                .find(|r| b.binary_search(r).is_err())
                .or_else(|| b.iter().find(|r| a.binary_search(r).is_err()));
            violations.push(format!(
                "{table}: {} rows live, {} rebuilt; {only_live} only live, {only_rebuilt} only rebuilt; e.g. {}",
                a.len(),
                b.len(),
                example.map(|e| e.chars().take(300).collect::<String>()).unwrap_or_default()
            ));
        }
    }
    Ok(violations)
}

async fn rows(db: &Db, query: &str) -> anyhow::Result<Vec<String>> {
    let rows = db.query(query, &[]).await?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}

/// Rebuilds every read model in a copy of the database with the server's
/// own command, and returns the copy's name.
pub async fn rebuild_copy(
    db: &Db,
    bin: &Path,
    url_of: impl Fn(&str) -> String,
    source: &str,
) -> anyhow::Result<String> {
    let copy = format!("{source}_rebuilt");
    // One statement per query: neither may run inside a transaction.
    db.simple_query(&format!("DROP DATABASE IF EXISTS {copy}"))
        .await?;
    db.simple_query(&format!("CREATE DATABASE {copy} TEMPLATE {source}"))
        .await
        .context("copying the database")?;
    let out = tokio::process::Command::new(bin)
        .args(["projections", "rebuild", "--all"])
        .env("DATABASE_URL", url_of(&copy))
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "projections rebuild failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(copy)
}

/// The log's hash chain, recomputed by the server's own command: appends
/// under faults must still have chained every event.
pub async fn chain(bin: &Path, url: &str) -> anyhow::Result<Vec<String>> {
    let out = tokio::process::Command::new(bin)
        .args(["audit", "verify"])
        .env("DATABASE_URL", url)
        .output()
        .await?;
    if out.status.success() {
        return Ok(Vec::new());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Ok(vec![stderr
        .lines()
        .last()
        .unwrap_or("audit verify failed")
        .to_string()])
}

/// The heads of every channel with seqs, from the database.
pub async fn heads(db: &Db) -> anyhow::Result<HashMap<Channel, i64>> {
    let mut heads = HashMap::new();
    for row in db
        .query("SELECT project_id, last_seq FROM projects", &[])
        .await?
    {
        heads.insert(Channel::Tickets(row.get(0)), row.get(1));
    }
    for row in db
        .query("SELECT user_id, last_seq FROM rm_notification_heads", &[])
        .await?
    {
        heads.insert(Channel::Notifications(row.get(0)), row.get(1));
    }
    Ok(heads)
}

/// Every socket received its channel's seqs from its first `since` to the
/// head, each once, in order, across all its connections.
pub fn sockets(clients: &[(Channel, Log)], heads: &HashMap<Channel, i64>) -> Vec<String> {
    let mut violations = Vec::new();
    for (i, (channel, log)) in clients.iter().enumerate() {
        if !channel.has_seqs() {
            continue;
        }
        let head = heads.get(channel).copied().unwrap_or(0);
        let Some(first) = log.first_since else {
            violations.push(format!("socket {i} ({channel:?}) never connected"));
            continue;
        };
        let want: Vec<i64> = (first + 1..=head).collect();
        if log.seqs == want {
            continue;
        }
        let mut count: BTreeMap<i64, usize> = BTreeMap::new();
        log.seqs
            .iter()
            .for_each(|s| *count.entry(*s).or_default() += 1);
        let duplicates = count.values().filter(|&&n| n > 1).count();
        let missing: Vec<i64> = want
            .iter()
            .filter(|s| !count.contains_key(s))
            .copied()
            .collect();
        let out_of_order = log.seqs.windows(2).filter(|w| w[1] <= w[0]).count();
        violations.push(format!(
            "socket {i} ({channel:?}, since {first}, head {head}, {} connections on ports {:?}): \
             {} received, {duplicates} duplicated, {} missing (first {:?}), {out_of_order} out of order",
            log.connects,
            log.ports,
            log.seqs.len(),
            missing.len(),
            missing.iter().take(5).collect::<Vec<_>>()
        ));
    }
    violations
}

/// Waits until every projection has applied the whole log and every
/// socket has reached its channel's head.
pub async fn settle(db: &Db, clients: &[Arc<Client>]) -> anyhow::Result<()> {
    crate::cluster::wait_until(
        Duration::from_secs(120),
        "projections caught up",
        || async {
            let row = db
                .query_one(
                    "SELECT (SELECT coalesce(max(position), 0) FROM events) \
                      <= (SELECT coalesce(min(position), 0) FROM projection_checkpoints)",
                    &[],
                )
                .await;
            row.is_ok_and(|r| r.get::<_, bool>(0))
        },
    )
    .await?;
    let heads = heads(db).await?;
    crate::cluster::wait_until(
        Duration::from_secs(120),
        "sockets at their heads",
        || async {
            clients.iter().all(|c| {
                let head = heads.get(&c.channel).copied().unwrap_or(0);
                !c.channel.has_seqs() || c.last.load(Ordering::SeqCst) >= head
            })
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_once_each_and_only_whole() {
        let text = r#"{"title":"t CHAOS00000000000000ab","body":"CHAOS00000000000000ab @x CHAOSzz CHAOS0123"}"#;
        assert_eq!(markers(text), vec!["CHAOS00000000000000ab"]);
    }

    fn log(first: i64, seqs: &[i64]) -> Log {
        Log {
            first_since: Some(first),
            seqs: seqs.to_vec(),
            ..Log::default()
        }
    }

    #[test]
    fn a_socket_must_get_every_seq_to_the_head_once() {
        let channel = Channel::Tickets(Uuid::nil());
        let heads = HashMap::from([(channel.clone(), 5)]);
        let check = |l: Log| sockets(&[(channel.clone(), l)], &heads);
        assert!(check(log(2, &[3, 4, 5])).is_empty());
        assert!(check(log(5, &[])).is_empty());
        for bad in [
            log(2, &[3, 5]),
            log(2, &[3, 4, 4, 5]),
            log(2, &[3, 5, 4]),
            log(2, &[3, 4]),
        ] {
            assert_eq!(check(bad.clone()).len(), 1, "{:?} passed", bad.seqs);
        }
        let never = Log::default();
        assert_eq!(check(never).len(), 1);
    }

    #[test]
    fn presence_sockets_have_no_seqs_to_check() {
        let presence = Channel::Presence(Uuid::nil());
        assert!(sockets(&[(presence, Log::default())], &HashMap::new()).is_empty());
    }
}
