//! Batches: a projection applies a whole batch at once (the rows it touches
//! read in one query, advanced in memory, written back with a statement per
//! table), and must build exactly what applying the events one at a time
//! builds, wherever the batch boundaries fall: the live worker's batches are
//! whatever JetStream delivers, a rebuild's are fixed-size slices of the log.

mod support;

use serde_json::json;
use support::*;
use ticketflow_projections::{
    all, apply_batch_remembering, rebuild, Applied, Projection, Remembered,
};
use ticketflow_store::StoredEvent;
use ticketflow_testkit::seed::{self, HistorySpec};

/// The test world's project plus a seeded history of every kind of event,
/// with mentions and deletions, in three more projects.
async fn seeded_world(backend: Backend) -> World {
    let w = World::on(backend).await;
    let before = w.log().await.len();
    let spec = HistorySpec {
        events: 800,
        projects: 3,
        users: 10,
        members_per_project: 6,
        events_per_append: 4,
        open_tickets: 12,
        writers: 2,
        ..HistorySpec::default()
    };
    let seeded = seed::history(&w.store, &spec).await.expect("seed");
    assert_eq!((seeded.events, w.log().await.len()), (800, before + 800));
    assert!(
        seeded.comments > 0 && seeded.mentions > 0 && seeded.deleted > 0,
        "{seeded:?}"
    );
    w
}

/// `projection`'s tables after applying `log` from scratch in batches of
/// `size`, as a live worker would.
async fn built_in_batches(
    w: &World,
    projection: &dyn Projection,
    log: &[StoredEvent],
    size: usize,
) -> Vec<(String, serde_json::Value)> {
    w.reset(projection).await;
    for chunk in log.chunks(size) {
        let applied = w.apply(projection, chunk).await;
        assert!(matches!(applied, Applied::Done { applied, .. } if applied == chunk.len()));
    }
    w.dump_projection(projection).await
}

async fn any_batch_boundaries_build_the_same_read_models(backend: Backend) {
    let w = seeded_world(backend).await;
    let log = w.log().await;
    for projection in all() {
        let p = projection.as_ref();
        let one_by_one = built_in_batches(&w, p, &log, 1).await;
        assert!(
            one_by_one.iter().all(|(_, rows)| rows != &json!([])),
            "{}: every table has rows",
            p.name()
        );
        for size in [7, 100, log.len()] {
            assert_eq!(
                built_in_batches(&w, p, &log, size).await,
                one_by_one,
                "{} in batches of {size}",
                p.name()
            );
        }
        if backend != Backend::Postgres {
            continue; // Rebuilds are PostgreSQL's.
        }
        rebuild(w.store.pool(), &w.store, projection.clone(), &|_| {})
            .await
            .expect("rebuild");
        assert_eq!(
            w.dump_projection(p).await,
            one_by_one,
            "{} rebuilt",
            p.name()
        );
    }
}

on_each_backend!(any_batch_boundaries_build_the_same_read_models);

/// A live worker remembers the ticket states of its batches rather than
/// reading them back; whatever else moves the checkpoint in between (another
/// instance's batches, a reset to 0), it builds what applying the events one
/// by one builds.
async fn remembered_states_build_the_same_read_models(backend: Backend) {
    let w = seeded_world(backend).await;
    let log = w.log().await;
    for projection in all() {
        let p = projection.as_ref();
        let one_by_one = built_in_batches(&w, p, &log, 1).await;
        let mut remembered = Remembered::default();
        for round in 1..=2 {
            w.reset(p).await;
            for (i, chunk) in log.chunks(7).enumerate() {
                let applied = if i % 3 == 2 {
                    w.apply(p, chunk).await // another instance's batch
                } else {
                    apply_batch_remembering(w.reads.as_ref(), p, chunk, &mut remembered)
                        .await
                        .expect("apply")
                };
                assert!(matches!(applied, Applied::Done { applied, .. } if applied == chunk.len()));
            }
            assert_eq!(
                w.dump_projection(p).await,
                one_by_one,
                "{} round {round}",
                p.name()
            );
        }
    }
}

on_each_backend!(remembered_states_build_the_same_read_models);
