//! Trap 3: at-least-once delivery. A batch is applied with its checkpoint in
//! one transaction; a redelivered or overlapping batch changes nothing it has
//! seen; a batch that skips events is refused so the caller can fill the gap.

use std::collections::BTreeMap;
use std::time::Duration;

use ticketflow_projections::{all, apply_batch, Applied, NotificationsProjection, Projection};
use ticketflow_store::StoredEvent;
use ticketflow_testkit::cast::{alice, bob, carol};
use ticketflow_testkit::on_each_backend;
use ticketflow_testkit::world::*;

/// A log with work for every projection: assignments, mentions, comments,
/// status changes, a deletion.
async fn busy_world(backend: Backend) -> World {
    let w = World::on(backend).await;
    let a = w.create(&alice(), "One", Some(&bob())).await;
    w.comment(&carol(), a, "hi @alice").await;
    w.status(&bob(), a, 2).await;
    let b = w.create(&bob(), "Two", None).await;
    w.assign(&alice(), b, Some(&carol())).await;
    w.comment(&alice(), b, "note").await;
    w.assign(&bob(), a, Some(&carol())).await;
    w.delete(&alice(), b).await;
    w
}

async fn dump_all(w: &World) -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    for p in all() {
        out.extend(w.dump_projection(p.as_ref()).await);
    }
    out
}

async fn apply(w: &World, p: &dyn Projection, events: &[StoredEvent]) -> Applied {
    w.apply(p, events).await
}

async fn a_redelivered_batch_changes_nothing(backend: Backend) {
    let w = busy_world(backend).await;
    let log = w.log().await;
    let head = log.last().expect("events").position;
    for p in all() {
        let first = apply(&w, p.as_ref(), &log).await;
        assert_eq!(
            first,
            Applied::Done {
                applied: log.len(),
                position: head
            }
        );
    }
    let before = dump_all(&w).await;
    assert!(
        before
            .iter()
            .all(|(_, rows)| rows != &serde_json::json!([])),
        "every table has rows: {before:?}"
    );
    for p in all() {
        let again = apply(&w, p.as_ref(), &log).await;
        assert_eq!(
            again,
            Applied::Done {
                applied: 0,
                position: head
            }
        );
        let tail = apply(&w, p.as_ref(), &log[log.len() - 3..]).await;
        assert_eq!(
            tail,
            Applied::Done {
                applied: 0,
                position: head
            }
        );
    }
    assert_eq!(dump_all(&w).await, before);
}

async fn an_overlapping_batch_applies_only_its_new_events(backend: Backend) {
    let w = busy_world(backend).await;
    let log = w.log().await;
    let split = log.len() / 2;
    // Incrementally: the first half, then an overlapping batch reaching the end.
    for p in all() {
        apply(&w, p.as_ref(), &log[..split]).await;
        let overlap = apply(&w, p.as_ref(), &log[split - 3..]).await;
        assert_eq!(
            overlap,
            Applied::Done {
                applied: log.len() - split,
                position: log[log.len() - 1].position
            }
        );
    }
    let incremental = dump_all(&w).await;

    // The same log applied in one batch gives the same rows.
    for p in all() {
        w.reset(p.as_ref()).await;
        apply(&w, p.as_ref(), &log).await;
    }
    assert_eq!(dump_all(&w).await, incremental);
}

async fn a_batch_that_skips_events_is_refused_untouched(backend: Backend) {
    let w = busy_world(backend).await;
    let log = w.log().await;
    let p = NotificationsProjection;
    assert_eq!(
        apply(&w, &p, &log[..4]).await,
        Applied::Done {
            applied: 4,
            position: log[3].position
        }
    );
    let before = w.dump_projection(&p).await;

    // Starts beyond the next position.
    let gap = apply(&w, &p, &log[6..]).await;
    assert_eq!(
        gap,
        Applied::Gap {
            expected_from: log[4].position
        }
    );
    // Continues, then skips one inside the batch.
    let holed: Vec<StoredEvent> = log[4..]
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, e)| e.clone())
        .collect();
    assert_eq!(
        apply(&w, &p, &holed).await,
        Applied::Gap {
            expected_from: log[4].position
        }
    );
    // Out of order.
    let mut shuffled = log[4..].to_vec();
    shuffled.swap(0, 1);
    assert_eq!(
        apply(&w, &p, &shuffled).await,
        Applied::Gap {
            expected_from: log[4].position
        }
    );
    assert_eq!(w.dump_projection(&p).await, before);
    assert_eq!(w.checkpoint(p.name()).await, log[3].position);

    // Filling from the store, as the gap says, completes it.
    let filled = w.sync(&p).await;
    assert_eq!(
        filled,
        Applied::Done {
            applied: log.len() - 4,
            position: log[log.len() - 1].position
        }
    );
}

async fn a_fresh_projection_needs_position_one(backend: Backend) {
    let w = busy_world(backend).await;
    let log = w.log().await;
    assert_eq!(
        apply(&w, &NotificationsProjection, &log[1..]).await,
        Applied::Gap { expected_from: 1 }
    );
    assert_eq!(
        apply(&w, &NotificationsProjection, &[]).await,
        Applied::Done {
            applied: 0,
            position: 0
        }
    );
    assert_eq!(w.checkpoint("notifications").await, 0);
    assert_eq!(w.checkpoint("nobody").await, 0);
}

async fn concurrent_workers_of_one_projection_apply_each_event_once(backend: Backend) {
    let w = std::sync::Arc::new(busy_world(backend).await);
    let log = std::sync::Arc::new(w.log().await);
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let (w, log) = (w.clone(), log.clone());
            tokio::spawn(async move {
                // Each worker gets the whole log, in batches of different sizes.
                let size = 2 + i;
                for chunk in log.chunks(size) {
                    let p = NotificationsProjection;
                    apply_batch(w.reads.as_ref(), &p, chunk)
                        .await
                        .expect("apply");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("worker");
    }
    // Batches may be refused as gaps when another worker lags; whatever is
    // left, a final sync fills. Nothing may be applied twice.
    w.sync(&NotificationsProjection).await;
    let concurrent = w.dump_projection(&NotificationsProjection).await;
    w.reset(&NotificationsProjection).await;
    w.sync(&NotificationsProjection).await;
    assert_eq!(
        w.dump_projection(&NotificationsProjection).await,
        concurrent,
        "six racing workers built what one builds"
    );
    let mut seqs: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for row in w.dump("rm_notifications").await.as_array().expect("rows") {
        let user = row["user_id"].to_string();
        seqs.entry(user)
            .or_default()
            .push(row["seq"].as_i64().expect("seq"));
    }
    assert!(!seqs.is_empty());
    for (user, mut got) in seqs {
        got.sort_unstable();
        let want: Vec<i64> = (1..=got.len() as i64).collect();
        assert_eq!(got, want, "user {user}: seqs 1..N without holes");
    }
}

on_each_backend!(
    a_redelivered_batch_changes_nothing,
    an_overlapping_batch_applies_only_its_new_events,
    a_batch_that_skips_events_is_refused_untouched,
    a_fresh_projection_needs_position_one,
);
on_each_backend!(threads = 4; concurrent_workers_of_one_projection_apply_each_event_once);

/// On PostgreSQL a batch's transaction announces the checkpoint it moved to
/// (X-Min-Position's waiters on every instance listen for it), and only
/// once it has committed.
#[tokio::test]
async fn a_postgres_batch_announces_its_checkpoint_at_commit() {
    use futures::StreamExt;
    use tokio_postgres::AsyncMessage;

    let w = busy_world(Backend::Postgres).await;
    let (listener, mut connection) = tokio_postgres::connect(&w.db.url, tokio_postgres::NoTls)
        .await
        .expect("listening connection");
    let (heard, mut notifications) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(n) = message {
                let _ = heard.send((n.channel().to_string(), n.payload().to_string()));
            }
        }
    });
    listener
        .batch_execute(&format!(
            "LISTEN {}",
            ticketflow_store::pg::CHECKPOINTS_CHANNEL
        ))
        .await
        .expect("LISTEN");

    let log = w.log().await;
    let head = log.last().expect("events").position;
    let projection = ticketflow_projections::by_name("tickets").expect("tickets");
    apply(&w, projection.as_ref(), &log).await;
    let heard = tokio::time::timeout(Duration::from_secs(10), notifications.recv())
        .await
        .expect("a notification within 10 s")
        .expect("the listener is running");
    assert_eq!(
        heard,
        (
            ticketflow_store::pg::CHECKPOINTS_CHANNEL.to_string(),
            format!("tickets:{head}")
        )
    );
}
