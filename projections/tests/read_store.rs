//! The read stores themselves: a transaction dropped unfinished leaves
//! nothing behind (nor a connection inside a transaction), and SQLite's
//! file keeps the read models across restarts and refuses a newer schema.

use std::sync::Arc;

use ticketflow_projections::{all, PgReadStore, ReadStore, SqliteReadStore, TicketsProjection};
use ticketflow_store::{EventStore, StoreError};
use ticketflow_testkit::cast::{alice, bob};
use ticketflow_testkit::on_each_backend;
use ticketflow_testkit::world::*;

/// Begins, moves the checkpoint of "tickets", and drops the transaction.
async fn abandon_a_batch(reads: &dyn ReadStore) {
    let mut tx = reads.begin().await.expect("begin");
    assert_eq!(tx.lock_checkpoints(&["tickets"]).await.expect("lock"), [0]);
    tx.set_checkpoints(&[("tickets", 5)]).await.expect("set");
    drop(tx);
}

/// Checkpoints are locked in name order, and come back in the order asked.
async fn checkpoints_come_back_in_the_order_asked(backend: Backend) {
    let w = World::on(backend).await;
    let mut tx = w.reads.begin().await.expect("begin");
    let names = ["tickets", "comments", "notifications"];
    assert_eq!(tx.lock_checkpoints(&names).await.expect("lock"), [0, 0, 0]);
    let moves = [("tickets", 7), ("comments", 3)];
    tx.set_checkpoints(&moves).await.expect("set");
    tx.commit().await.expect("commit");

    let mut tx = w.reads.begin().await.expect("begin");
    let locked = tx.lock_checkpoints(&names).await.expect("lock");
    assert_eq!(locked, [7, 3, 0]);
    tx.rollback().await.expect("rollback");
    assert_eq!(w.reads.checkpoint("tickets").await.expect("checkpoint"), 7);
}

on_each_backend!(checkpoints_come_back_in_the_order_asked);

async fn a_dropped_transaction_leaves_nothing(backend: Backend) {
    let w = World::on(backend).await;
    let reads: Arc<dyn ReadStore> = match backend {
        // One connection: were it pooled again inside the dropped
        // transaction, the reads below would see its uncommitted write.
        Backend::Postgres => Arc::new(PgReadStore::new(
            w.db.store_with_pool(1).await.pool().clone(),
        )),
        Backend::Sqlite => w.reads.clone(),
    };
    abandon_a_batch(reads.as_ref()).await;
    assert_eq!(reads.checkpoint("tickets").await.expect("checkpoint"), 0);
    abandon_a_batch(reads.as_ref()).await;
    // A whole batch still goes through, on a clean transaction.
    let log = w.log().await;
    let applied = ticketflow_projections::apply_batch(reads.as_ref(), &TicketsProjection, &log)
        .await
        .expect("apply")
        .applied;
    assert!(matches!(
        applied,
        ticketflow_projections::Applied::Done { .. }
    ));
    assert_eq!(
        reads.checkpoint("tickets").await.expect("checkpoint"),
        log.len() as i64
    );
}

on_each_backend!(a_dropped_transaction_leaves_nothing);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_the_read_models_across_restarts() {
    let mut w = World::on(Backend::Sqlite).await;
    let t = w.create(&alice(), "Kept", Some(&bob())).await;
    w.sync_all().await;
    let head = w.store.head_position().await.expect("head");
    let before = w.reads.checkpoints().await.expect("checkpoints");
    let (unread, _) = w
        .reads
        .notifications(bob().id, false, None, 10)
        .await
        .expect("notifications");
    assert_eq!(unread, 1);
    let path = w.dir_path().join("reads.db");
    // Closes the SQLite store's connections (the world held the only one).
    w.reads = Arc::new(PgReadStore::new(w.store.pool().clone()));

    let reopened = SqliteReadStore::open(&path).await.expect("reopen");
    assert_eq!(reopened.checkpoints().await.expect("checkpoints"), before);
    assert!(before.iter().all(|(_, p)| *p == head));
    assert_eq!(all().len(), before.len());
    let ticket = reopened.ticket(t).await.expect("ticket").expect("kept");
    assert_eq!(ticket.title, "Kept");
    assert_eq!(reopened.unread_count(bob().id).await.expect("unread"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_refuses_a_file_from_a_newer_schema() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("reads.db");
    SqliteReadStore::open(&path).await.expect("create");
    let conn = rusqlite::Connection::open(&path).expect("open");
    conn.pragma_update(None, "user_version", 99)
        .expect("set version");
    drop(conn);
    let refused = SqliteReadStore::open(&path).await;
    assert!(
        matches!(refused, Err(StoreError::Corrupt(ref m)) if m.contains("99")),
        "{:?}",
        refused.err()
    );
    // Opening again at the known version changes nothing.
    let again = dir.path().join("again.db");
    SqliteReadStore::open(&again).await.expect("create");
    let store = SqliteReadStore::open(&again).await.expect("reopen");
    assert_eq!(store.checkpoints().await.expect("empty"), vec![]);
}
