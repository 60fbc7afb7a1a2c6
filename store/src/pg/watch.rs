//! Following the log as it grows: appends `NOTIFY` their last position at
//! commit, projection workers their checkpoints; one LISTEN connection turns
//! both into `watch` channels. Notifications are an accelerator, not the
//! truth: a poll every [`POLL`] repairs anything missed while disconnected.

use std::time::Duration;

use futures::StreamExt;
use tokio_postgres::{AsyncMessage, NoTls};

use super::{prepared, PgStore};
use crate::watch::{Watch, WatchFeed};
use crate::EventStore as _;

pub const EVENTS_CHANNEL: &str = "ticketflow_events";
/// The channel's name, as a literal both constants below are built from.
macro_rules! checkpoints_channel {
    () => {
        "ticketflow_checkpoints"
    };
}
pub const CHECKPOINTS_CHANNEL: &str = checkpoints_channel!();
/// The SQL call announcing that projection `name` (text) has applied
/// `position` (bigint), columns of the rows it is selected over: the payload
/// [`dispatch`] reads. A projection batch makes it inside its transaction, so
/// it is delivered at commit.
pub const NOTIFY_CHECKPOINT: &str = concat!(
    "pg_notify('",
    checkpoints_channel!(),
    "', name::text || ':' || position::bigint::text)"
);
const POLL: Duration = Duration::from_millis(250);

impl PgStore {
    /// Starts following the log; the tasks live as long as a receiver does.
    pub fn watch(&self) -> Watch {
        let (feed, watch) = WatchFeed::new(0);
        tokio::spawn(listen_forever(self.clone(), feed.clone()));
        tokio::spawn(poll_forever(self.clone(), feed));
        watch
    }
}

async fn listen_forever(store: PgStore, feed: WatchFeed) {
    while !feed.is_unwatched() {
        if let Err(e) = listen(&store, &feed).await {
            tracing::warn!(error = %e, "LISTEN connection lost; polling until it is back");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn listen(store: &PgStore, feed: &WatchFeed) -> Result<(), tokio_postgres::Error> {
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
    poll_once(store, feed).await;
    while let Some(n) = rx.recv().await {
        dispatch(feed, n.channel(), n.payload());
        if feed.is_unwatched() {
            break;
        }
    }
    drop(client);
    driver.await.unwrap_or(Ok(()))
}

fn dispatch(feed: &WatchFeed, channel: &str, payload: &str) {
    if channel == EVENTS_CHANNEL {
        if let Ok(position) = payload.parse() {
            feed.head(position);
        }
    } else if let Some((name, position)) = payload.rsplit_once(':') {
        if let Ok(position) = position.parse() {
            feed.checkpoint(name, position);
        }
    }
}

async fn poll_forever(store: PgStore, feed: WatchFeed) {
    while !feed.is_unwatched() {
        poll_once(&store, &feed).await;
        tokio::time::sleep(POLL).await;
    }
}

async fn poll_once(store: &PgStore, feed: &WatchFeed) {
    let head = store.head_position().await;
    crate::metrics::postgres_answered(head.is_ok());
    match head {
        Ok(head) => feed.head(head),
        Err(e) => tracing::debug!(error = %e, "cannot poll the log head"),
    }
    match store.checkpoints().await {
        Ok(all) => all
            .into_iter()
            .for_each(|(name, p)| feed.checkpoint(&name, p)),
        Err(e) => tracing::debug!(error = %e, "cannot poll checkpoints"),
    }
}

impl PgStore {
    /// Every projection's checkpoint (none before the read models exist).
    pub async fn checkpoints(&self) -> Result<Vec<(String, i64)>, crate::StoreError> {
        let client = self.client().await?;
        let exists = prepared::query_one(
            &client,
            "SELECT to_regclass('projection_checkpoints') IS NOT NULL",
            &[],
        )
        .await?
        .get::<_, bool>(0);
        if !exists {
            return Ok(Vec::new());
        }
        let rows = prepared::query(
            &client,
            "SELECT name, position FROM projection_checkpoints",
            &[],
        )
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}

impl PgStore {
    /// Records how far the relay has published (for status and lag reports).
    pub async fn record_relayed(&self, position: i64) -> Result<(), crate::StoreError> {
        let client = self.client().await?;
        prepared::execute(
            &client,
            "INSERT INTO projection_checkpoints (name, position, updated_at)
                 VALUES ('relay', $1, now())
                 ON CONFLICT (name) DO UPDATE SET position = $1, updated_at = now()",
            &[&position],
        )
        .await?;
        Ok(())
    }
}
