//! `ticketflow notify`: an operator's `general` notification to one user,
//! appended to the log (the user's inbox stream) like any command's events.

use std::path::Path;

use anyhow::Context;
use ticketflow::DataDir;
use ticketflow_app::notices::send_notice;
use ticketflow_store::pg::PgStore;
use ticketflow_store::sqlite::SqliteStore;

/// What to send, and to whom.
pub struct Notice {
    pub username: String,
    pub title: String,
    pub message: String,
}

/// On PostgreSQL: a running server's relay and projections deliver it live.
pub async fn notify_pg(store: &PgStore, notice: &Notice) -> anyhow::Result<()> {
    send(store, store, notice).await
}

/// On an embedded data directory, which must not be in use (stop the
/// server): the server's projector applies the event on its next start.
pub async fn notify_embedded(dir: &Path, notice: &Notice) -> anyhow::Result<()> {
    let dir = DataDir::open(dir)?;
    let events_db = dir.events_db();
    let store = tokio::task::spawn_blocking(move || SqliteStore::open(&events_db))
        .await
        .context("the task opening the log")?
        .context("opening the log")?;
    send(&store, &store, notice).await
}

async fn send(
    events: &dyn ticketflow_store::EventStore,
    accounts: &dyn ticketflow_store::Accounts,
    notice: &Notice,
) -> anyhow::Result<()> {
    let event = send_notice(
        events,
        accounts,
        &notice.username,
        &notice.title,
        &notice.message,
    )
    .await?;
    println!(
        "notice {} to {} at position {}",
        event.event_id, notice.username, event.position
    );
    Ok(())
}
