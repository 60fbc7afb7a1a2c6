//! Batches: a projection applies a whole batch at once (the rows it touches
//! read in one query, advanced in memory, written back with a statement per
//! table), and must build exactly what applying the events one at a time
//! builds, wherever the batch boundaries fall: the live worker's batches are
//! whatever JetStream delivers, a rebuild's are fixed-size slices of the log.

use serde_json::json;
use ticketflow_projections::{all, apply_batch_together, rebuild, Applied, Projection, Remembered};
use ticketflow_store::StoredEvent;
use ticketflow_testkit::on_each_backend;
use ticketflow_testkit::seed::{self, HistorySpec};
use ticketflow_testkit::world::*;

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

/// The live worker applies each batch to every projection in one
/// transaction, remembering the ticket states of its batches rather than
/// reading them back; whatever else moves the checkpoints in between (another
/// instance's batches, a reset to 0), it builds what applying the events one
/// by one builds. A projection the batch does not continue is left alone.
async fn remembered_states_build_the_same_read_models(backend: Backend) {
    let w = seeded_world(backend).await;
    let log = w.log().await;
    let projections = all();
    let mut one_by_one = Vec::new();
    for p in &projections {
        one_by_one.push(built_in_batches(&w, p.as_ref(), &log, 1).await);
    }
    let mut remembered: Vec<Remembered> =
        projections.iter().map(|_| Remembered::default()).collect();
    let together = async |chunk: &[StoredEvent], remembered: &mut [Remembered]| {
        let mut members: Vec<_> = projections
            .iter()
            .map(|p| p.as_ref())
            .zip(remembered.iter_mut())
            .collect();
        let outcomes = apply_batch_together(w.reads.as_ref(), &mut members, chunk)
            .await
            .expect("apply");
        outcomes.into_iter().map(|o| o.applied).collect::<Vec<_>>()
    };
    for round in 1..=2 {
        for p in &projections {
            w.reset(p.as_ref()).await;
        }
        for (i, chunk) in log.chunks(7).enumerate() {
            if i % 3 == 2 {
                // Another instance's batch, a projection at a time.
                for p in &projections {
                    w.apply(p.as_ref(), chunk).await;
                }
                continue;
            }
            let applied = together(chunk, &mut remembered).await;
            let all_new = Applied::Done {
                applied: chunk.len(),
                position: chunk.last().expect("chunk").position,
            };
            assert_eq!(applied, vec![all_new; projections.len()]);
        }
        for (p, expected) in projections.iter().zip(&one_by_one) {
            let built = w.dump_projection(p.as_ref()).await;
            assert_eq!(&built, expected, "{} round {round}", p.name());
        }
    }

    let head = log.last().expect("log").position;
    w.reset(projections[0].as_ref()).await;
    let applied = together(&log[log.len() - 3..], &mut remembered).await;
    assert_eq!(applied[0], Applied::Gap { expected_from: 1 });
    assert!(applied[1..].iter().all(|a| *a
        == Applied::Done {
            applied: 0,
            position: head
        }));
}

on_each_backend!(remembered_states_build_the_same_read_models);
