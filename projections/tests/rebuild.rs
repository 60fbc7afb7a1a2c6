//! Rebuilds: the whole log replayed into fresh tables and swapped in. The
//! result must equal what incremental application built, row for row; user
//! state (read flags) must survive; the schema (index and constraint names)
//! must come back unchanged so the next rebuild works; and writes and a live
//! worker running during the rebuild must lose nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ticketflow_projections::rebuild::{rebuild_all, Limits};
use ticketflow_projections::{all, rebuild, Progress, Projection, Rebuilt};
use ticketflow_store::EventStore;
use ticketflow_testkit::cast::{alice, bob, carol};
use ticketflow_testkit::world::*;

/// Several tickets' worth of every kind of event.
async fn busy_world(tickets: usize) -> World {
    let w = World::new().await;
    for i in 0..tickets {
        let who = [alice(), bob(), carol()];
        let (actor, other) = (&who[i % 3], &who[(i + 1) % 3]);
        let t = w.create(actor, &format!("Ticket {i}"), Some(other)).await;
        w.comment(other, t, &format!("on it @{}", actor.username))
            .await;
        w.status(actor, t, 2).await;
        w.assign(other, t, Some(&who[(i + 2) % 3])).await;
        if i % 4 == 3 {
            w.delete(actor, t).await;
        }
    }
    w
}

async fn run_rebuild(w: &World, projection: Arc<dyn Projection>) -> (Rebuilt, Vec<Progress>) {
    let seen = Mutex::new(Vec::new());
    let report = |p: Progress| seen.lock().expect("progress").push(p);
    let rebuilt = rebuild(w.store.pool(), &w.store, projection, &report)
        .await
        .expect("rebuild");
    (rebuilt, seen.into_inner().expect("progress"))
}

/// The full definitions of every index and constraint of the owned tables,
/// and their storage parameters.
async fn schema(w: &World, projection: &dyn Projection) -> Vec<String> {
    let tables: Vec<String> = projection.tables().iter().map(|t| t.to_string()).collect();
    let client = w.client().await;
    let indexes = client
        .query(
            "SELECT indexdef FROM pg_indexes WHERE tablename = ANY($1) ORDER BY 1",
            &[&tables],
        )
        .await
        .expect("indexes");
    let constraints = client
        .query(
            "SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
             FROM pg_constraint WHERE conrelid::regclass::text = ANY($1) ORDER BY 1",
            &[&tables],
        )
        .await
        .expect("constraints");
    let options = client
        .query(
            "SELECT relname::text || ' ' || coalesce(array_to_string(reloptions, ','), '')
             FROM pg_class WHERE relname = ANY($1) ORDER BY 1",
            &[&tables],
        )
        .await
        .expect("storage parameters");
    indexes
        .iter()
        .chain(constraints.iter())
        .chain(options.iter())
        .map(|r| r.get(0))
        .collect()
}

async fn leftover_copies(w: &World) -> Vec<String> {
    let client = w.client().await;
    client
        .query(
            "SELECT tablename::text FROM pg_tables WHERE tablename LIKE '%\\_rebuild'",
            &[],
        )
        .await
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Rebuilding every projection together (one reading of the log, the
/// projections applying each batch at once) builds what each rebuilt alone,
/// and the incremental application, build.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilding_all_together_reproduces_every_incremental_table() {
    rebuild_all_reproduces_the_incremental_tables(Limits::default()).await;
}

/// The same in batches of a few events, the ticket states kept between
/// them written out every batch or two: whatever the batches and however
/// often the states go to the copies, the result is the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuilding_in_small_batches_keeping_few_states_changes_nothing() {
    let limits = Limits {
        batch: 5,
        kept_states: 3,
    };
    rebuild_all_reproduces_the_incremental_tables(limits).await;
}

async fn rebuild_all_reproduces_the_incremental_tables(limits: Limits) {
    let w = busy_world(6).await;
    w.sync_all().await;
    let head = w.store.head_position().await.expect("head");
    let projections = all();
    let mut incremental = Vec::new();
    for p in &projections {
        incremental.push(w.dump_projection(p.as_ref()).await);
    }
    let seen = Mutex::new(Vec::new());
    let report = |name: &str, p: Progress| {
        seen.lock()
            .expect("progress")
            .push((name.to_string(), p.position))
    };
    let rebuilt = rebuild_all(w.store.pool(), &w.store, &projections, &report, limits)
        .await
        .expect("rebuild all");

    assert_eq!(rebuilt.len(), projections.len());
    let batches = (head + limits.batch - 1) / limits.batch;
    for ((p, rebuilt), before) in projections.iter().zip(&rebuilt).zip(&incremental) {
        assert_eq!((rebuilt.position, rebuilt.applied), (head, head as u64));
        assert_eq!(&w.dump_projection(p.as_ref()).await, before, "{}", p.name());
        assert_eq!(w.checkpoint(p.name()).await, head);
        let reported = seen.lock().expect("progress");
        let mine: Vec<i64> = reported
            .iter()
            .filter(|(name, _)| name == p.name())
            .map(|(_, position)| *position)
            .collect();
        assert_eq!(
            mine.len() as i64,
            batches,
            "{} reported each batch",
            p.name()
        );
        assert_eq!(mine.last(), Some(&head), "{} reported the head", p.name());
    }
    assert!(leftover_copies(&w).await.is_empty());
}

/// Text that a careless bulk load mangles: quotes, tabs, newlines,
/// backslashes (`\N` and `\.` mean NULL and end-of-data in COPY's text
/// format), non-ASCII, and columns left NULL (an unassigned ticket, an
/// announcement about no ticket, an operator's notice about no project).
const AWKWARD: &[&str] = &[
    "quote \" and ' and `",
    "tab\there, CR\r\nnewline\nand a trailing one\n",
    "backslash \\ \\N \\. \\\\ \\t",
    "unicode: caf\u{e9}, \u{65e5}\u{672c}\u{8a9e}, \u{1f3ab}\u{200d}, \u{5e2}\u{5d1}\u{5e8}\u{5d9}\u{5ea}, e\u{301}",
    "json-ish {\"a\": [1, \"\\u0000\"]} <b>&amp;</b>",
];

/// Every value stored by a rebuild (which loads its copies in bulk) is the
/// value the live worker stored, byte for byte, NULLs included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awkward_text_comes_back_from_a_rebuild_unchanged() {
    let w = World::new().await;
    for (i, text) in AWKWARD.iter().enumerate() {
        let assignee = (i % 2 == 0).then(bob);
        let t = w.create(&alice(), text, assignee.as_ref()).await;
        w.comment(&bob(), t, &format!("{text} @alice")).await;
        w.announce(&alice(), text, text).await;
        w.notice(&carol(), text, text).await;
    }
    w.sync_all().await;
    let projections = all();
    let mut incremental = Vec::new();
    for p in &projections {
        incremental.push(w.dump_projection(p.as_ref()).await);
    }
    let stored = w.dump("rm_comments").await.to_string();
    assert!(stored.contains("backslash \\\\ \\\\N"), "{stored}");
    let general: i64 = w
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM rm_notifications WHERE ticket_id IS NULL",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert!(general > 0, "announcements and notices are about no ticket");

    rebuild_all(
        w.store.pool(),
        &w.store,
        &projections,
        &|_, _| {},
        Limits::default(),
    )
    .await
    .expect("rebuild all");
    for (p, before) in projections.iter().zip(&incremental) {
        assert_eq!(&w.dump_projection(p.as_ref()).await, before, "{}", p.name());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_reproduces_the_incremental_tables_twice() {
    let w = busy_world(8).await;
    w.sync_all().await;
    let head = w.store.head_position().await.expect("head");
    // User state outside the projection: one read flag and a read-all mark.
    let (_, bobs) = w
        .reads
        .notifications(bob().id, false, None, 50)
        .await
        .expect("list");
    assert!(w.reads.mark_read(bob().id, bobs[1].id).await.expect("read"));
    w.reads.mark_all_read(carol().id).await.expect("read all");
    let unread_before = unread_counts(&w).await;

    for projection in all() {
        let p = projection.as_ref();
        let incremental = w.dump_projection(p).await;
        let schema_before = schema(&w, p).await;
        assert!(schema_before.len() >= p.tables().len());
        let rewrites_states = p.tables().iter().any(|t| t.ends_with("tickets"));
        assert_eq!(
            schema_before.iter().any(|s| s.ends_with("fillfactor=70")),
            rewrites_states,
            "{}: {schema_before:?}",
            p.name()
        );
        for round in 1..=2 {
            let (rebuilt, progress) = run_rebuild(&w, projection.clone()).await;
            assert_eq!(rebuilt.position, head, "{} round {round}", p.name());
            assert_eq!(rebuilt.applied, head as u64);
            let last = progress.last().expect("progress reported");
            assert_eq!(
                (last.applied, last.position, last.head),
                (head as u64, head, head)
            );
            assert!(last.rate > 0.0);
            assert_eq!(
                w.dump_projection(p).await,
                incremental,
                "{} round {round}: same rows",
                p.name()
            );
            assert_eq!(
                schema(&w, p).await,
                schema_before,
                "{} round {round}",
                p.name()
            );
            assert_eq!(w.checkpoint(p.name()).await, head);
        }
    }
    assert_eq!(unread_counts(&w).await, unread_before, "read flags survive");
    assert!(leftover_copies(&w).await.is_empty());

    // The live worker carries on from the rebuilt checkpoint.
    let t = w.create(&carol(), "After", Some(&alice())).await;
    for p in all() {
        assert_eq!(
            w.sync(p.as_ref()).await,
            ticketflow_projections::Applied::Done {
                applied: 1,
                position: head + 1
            }
        );
    }
    assert!(w.reads.ticket(t).await.expect("ticket").is_some());
}

async fn unread_counts(w: &World) -> Vec<i64> {
    let mut out = Vec::new();
    for user in [alice(), bob(), carol()] {
        out.push(w.reads.unread_count(user.id).await.expect("count"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_of_an_empty_log_gives_empty_tables() {
    let db = ticketflow_testkit::TestDb::create().await;
    let store = db.store().await;
    for projection in all() {
        let rebuilt = rebuild(store.pool(), &store, projection, &|_| {})
            .await
            .expect("rebuild");
        assert_eq!((rebuilt.position, rebuilt.applied), (0, 0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_copy_is_replaced_and_a_second_rebuild_is_refused() {
    let w = busy_world(2).await;
    w.sync_all().await;
    let p: Arc<dyn Projection> = Arc::new(ticketflow_projections::TicketsProjection);
    let client = w.client().await;
    // A crashed rebuild's leftovers, with a row that must not survive.
    client
        .batch_execute(
            "CREATE TABLE rm_tickets_rebuild (LIKE rm_tickets INCLUDING ALL);
             INSERT INTO rm_tickets_rebuild SELECT * FROM rm_tickets;",
        )
        .await
        .expect("stale copy");
    let before = w.dump_projection(p.as_ref()).await;
    run_rebuild(&w, p.clone()).await;
    assert_eq!(w.dump_projection(p.as_ref()).await, before);

    // While one rebuild holds the projection's rebuild lock, another is refused.
    client
        .execute(
            "SELECT pg_advisory_lock(1952607332, hashtext('tickets'))",
            &[],
        )
        .await
        .expect("lock");
    let refused = rebuild(w.store.pool(), &w.store, p.clone(), &|_| {}).await;
    assert!(refused.is_err(), "{refused:?}");
    client
        .execute(
            "SELECT pg_advisory_unlock(1952607332, hashtext('tickets'))",
            &[],
        )
        .await
        .expect("unlock");
    run_rebuild(&w, p).await;
}

/// Trap 3 and the swap: commands keep coming and a live worker keeps
/// applying while every projection is rebuilt, twice. Afterwards the live
/// tables must equal a from-scratch build of the final log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuild_under_writes_and_a_live_worker_loses_nothing() {
    let w = Arc::new(busy_world(6).await);
    w.sync_all().await;
    let rebuilding = Arc::new(AtomicBool::new(true));
    let stop = Arc::new(AtomicBool::new(false));

    // Writes until the rebuilds are over, so they overlap every phase.
    let writer = {
        let (w, rebuilding) = (w.clone(), rebuilding.clone());
        tokio::spawn(async move {
            let mut created = 0;
            while rebuilding.load(Ordering::Relaxed) || created < 5 {
                let t = w
                    .create(&bob(), &format!("Live {created}"), Some(&carol()))
                    .await;
                w.comment(&alice(), t, "@bob and @carol").await;
                w.status(&carol(), t, 3).await;
                created += 1;
            }
            created
        })
    };
    let worker = {
        let (w, stop) = (w.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                w.sync_all().await;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    for _ in 0..2 {
        for p in all() {
            run_rebuild(&w, p).await;
        }
    }
    rebuilding.store(false, Ordering::Relaxed);
    let created = writer.await.expect("writer");
    stop.store(true, Ordering::Relaxed);
    worker.await.expect("worker");
    w.sync_all().await;

    let head = w.store.head_position().await.expect("head");
    let client = w.client().await;
    for p in all() {
        let p = p.as_ref();
        assert_eq!(w.checkpoint(p.name()).await, head);
        let live = w.dump_projection(p).await;
        w.reset(p).await;
        w.sync(p).await;
        assert_eq!(w.dump_projection(p).await, live, "{}", p.name());
    }
    let live_tickets: i64 = client
        .query_one("SELECT count(*) FROM rm_tickets WHERE NOT deleted", &[])
        .await
        .expect("count")
        .get(0);
    // busy_world(6) deletes one of its six.
    assert_eq!(live_tickets, 5 + created);
}

/// Readers never see a half-built model: while rebuilds swap the tables
/// again and again, every read sees all rows, and none fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_see_the_whole_model_throughout_a_rebuild() {
    let w = Arc::new(busy_world(6).await);
    w.sync_all().await;
    let tickets = w
        .reads
        .tickets(w.project_id, None, None, 0, 200)
        .await
        .expect("tickets")
        .len();
    let (bob_unread, bobs) = w
        .reads
        .notifications(bob().id, false, None, 200)
        .await
        .expect("notifications");
    let done = Arc::new(AtomicBool::new(false));

    let reader = {
        let (w, done) = (w.clone(), done.clone());
        tokio::spawn(async move {
            let mut reads = 0;
            while !done.load(Ordering::Relaxed) || reads == 0 {
                let seen = w
                    .reads
                    .tickets(w.project_id, None, None, 0, 200)
                    .await
                    .expect("tickets during a rebuild");
                assert_eq!(seen.len(), tickets);
                let (unread, items) = w
                    .reads
                    .notifications(bob().id, false, None, 200)
                    .await
                    .expect("notifications during a rebuild");
                assert_eq!((unread, items.len()), (bob_unread, bobs.len()));
                reads += 1;
            }
            reads
        })
    };
    for _ in 0..3 {
        for p in all() {
            run_rebuild(&w, p).await;
        }
    }
    done.store(true, Ordering::Relaxed);
    assert!(reader.await.expect("reader") > 0);
}
