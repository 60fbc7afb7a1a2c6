//! Following the log as it grows: appends `NOTIFY` their last position at
//! commit, projection workers their checkpoints; one LISTEN connection turns
//! both into `watch` channels. Notifications are an accelerator, not the
//! truth: a poll every [`POLL`] repairs anything missed while disconnected.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;
use tokio_postgres::{AsyncMessage, NoTls};

use super::PgStore;
use crate::EventStore as _;

pub const EVENTS_CHANNEL: &str = "ticketflow_events";
pub const CHECKPOINTS_CHANNEL: &str = "ticketflow_checkpoints";
const POLL: Duration = Duration::from_millis(250);

/// The newest committed position, and each projection's applied position.
#[derive(Clone)]
pub struct Watch {
    pub head: watch::Receiver<i64>,
    pub checkpoints: watch::Receiver<BTreeMap<String, i64>>,
}

struct Senders {
    head: watch::Sender<i64>,
    checkpoints: watch::Sender<BTreeMap<String, i64>>,
}

impl Senders {
    fn head(&self, position: i64) {
        self.head.send_if_modified(|cur| raise(cur, position));
    }

    fn checkpoint(&self, name: &str, position: i64) {
        self.checkpoints
            .send_if_modified(|map| raise(map.entry(name.to_string()).or_default(), position));
    }
}

fn raise(current: &mut i64, to: i64) -> bool {
    let raised = to > *current;
    if raised {
        *current = to;
    }
    raised
}

impl PgStore {
    /// Starts following the log; the tasks live as long as a receiver does.
    pub fn watch(&self) -> Watch {
        let (head, head_rx) = watch::channel(0);
        let (checkpoints, checkpoints_rx) = watch::channel(BTreeMap::new());
        let senders = std::sync::Arc::new(Senders { head, checkpoints });
        tokio::spawn(listen_forever(self.clone(), senders.clone()));
        tokio::spawn(poll_forever(self.clone(), senders));
        Watch {
            head: head_rx,
            checkpoints: checkpoints_rx,
        }
    }
}

async fn listen_forever(store: PgStore, senders: std::sync::Arc<Senders>) {
    while !senders.head.is_closed() {
        if let Err(e) = listen(&store, &senders).await {
            tracing::warn!(error = %e, "LISTEN connection lost; polling until it is back");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn listen(store: &PgStore, senders: &Senders) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = store.config.connect(NoTls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // The connection delivers notifications only while something polls it.
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            if let AsyncMessage::Notification(n) = message? {
                if tx.send(n).is_err() {
                    break;
                }
            }
        }
        Ok::<(), tokio_postgres::Error>(())
    });
    client
        .batch_execute(&format!(
            "LISTEN {EVENTS_CHANNEL}; LISTEN {CHECKPOINTS_CHANNEL}"
        ))
        .await?;
    // Whatever committed before LISTEN took effect is picked up here.
    poll_once(store, senders).await;
    while let Some(n) = rx.recv().await {
        dispatch(senders, n.channel(), n.payload());
        if senders.head.is_closed() {
            break;
        }
    }
    drop(client);
    driver.await.unwrap_or(Ok(()))
}

fn dispatch(senders: &Senders, channel: &str, payload: &str) {
    if channel == EVENTS_CHANNEL {
        if let Ok(position) = payload.parse() {
            senders.head(position);
        }
    } else if let Some((name, position)) = payload.rsplit_once(':') {
        if let Ok(position) = position.parse() {
            senders.checkpoint(name, position);
        }
    }
}

async fn poll_forever(store: PgStore, senders: std::sync::Arc<Senders>) {
    while !senders.head.is_closed() {
        poll_once(&store, &senders).await;
        tokio::time::sleep(POLL).await;
    }
}

async fn poll_once(store: &PgStore, senders: &Senders) {
    match store.head_position().await {
        Ok(head) => senders.head(head),
        Err(e) => tracing::debug!(error = %e, "cannot poll the log head"),
    }
    match store.checkpoints().await {
        Ok(all) => all
            .into_iter()
            .for_each(|(name, p)| senders.checkpoint(&name, p)),
        Err(e) => tracing::debug!(error = %e, "cannot poll checkpoints"),
    }
}

impl PgStore {
    /// Every projection's checkpoint (none before the read models exist).
    pub async fn checkpoints(&self) -> Result<Vec<(String, i64)>, crate::StoreError> {
        let client = self.client().await?;
        let exists = client
            .query_one(
                "SELECT to_regclass('projection_checkpoints') IS NOT NULL",
                &[],
            )
            .await?
            .get::<_, bool>(0);
        if !exists {
            return Ok(Vec::new());
        }
        let rows = client
            .query("SELECT name, position FROM projection_checkpoints", &[])
            .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Tells every watcher that projection `name` has applied `position`.
    pub async fn announce_checkpoint(
        &self,
        name: &str,
        position: i64,
    ) -> Result<(), crate::StoreError> {
        let client = self.client().await?;
        let payload = format!("{name}:{position}");
        client
            .execute(
                "SELECT pg_notify($1, $2)",
                &[&CHECKPOINTS_CHANNEL, &payload],
            )
            .await?;
        Ok(())
    }
}

impl PgStore {
    /// Records how far the relay has published (for status and lag reports).
    pub async fn record_relayed(&self, position: i64) -> Result<(), crate::StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO projection_checkpoints (name, position, updated_at)
                 VALUES ('relay', $1, now())
                 ON CONFLICT (name) DO UPDATE SET position = $1, updated_at = now()",
                &[&position],
            )
            .await?;
        Ok(())
    }
}
