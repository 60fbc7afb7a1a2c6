//! Idempotency-Key records, on both backends (see testkit's `backend`):
//! each rule a script of claims, completions and releases.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use ticketflow_domain::project::ProjectPayload;
use ticketflow_domain::Event;
use ticketflow_store::{Append, Claim, CommandKey, CommittedCommand, Metadata, StoredResponse};
use ticketflow_testkit::cast::{alice, meta_now};
use ticketflow_testkit::fixtures::{create_project, created, retitled};
use uuid::Uuid;

use ticketflow_testkit::backend::{Backend, Store};

ticketflow_testkit::on_both_backends!(
    a_key_is_in_progress_then_replays_its_response,
    a_key_reused_for_another_request_is_a_mismatch,
    a_released_key_may_be_claimed_again,
    a_stale_claim_or_an_expired_record_is_taken_over,
    concurrent_claims_acquire_a_key_once,
    a_keyed_append_marks_its_key_in_its_own_transaction,
    expired_records_are_purged_by_later_claims,
);

/// The clock of a claim: `now`, the stale and the expiry horizons.
#[derive(Clone, Copy)]
struct Clock {
    now: DateTime<Utc>,
    stale_before: DateTime<Utc>,
    expired_before: DateTime<Utc>,
}

impl Clock {
    fn at(now: DateTime<Utc>) -> Self {
        Self {
            now,
            stale_before: now - Duration::minutes(1),
            expired_before: now - Duration::hours(24),
        }
    }
}

async fn claim(store: &dyn Store, user: Uuid, key: &str, hash: &[u8], clock: Clock) -> Claim {
    store
        .claim(
            user,
            key,
            hash,
            clock.now,
            clock.stale_before,
            clock.expired_before,
        )
        .await
        .expect("claim")
}

fn response() -> StoredResponse {
    StoredResponse {
        status: 201,
        headers: vec![("location".into(), "/tickets/1".into())],
        body: b"{\"ok\":true}".to_vec(),
    }
}

/// Whose key: two users of one store.
#[derive(Debug, Clone, Copy)]
enum Who {
    User,
    Other,
}

/// When a claim is made, from the script's start.
#[derive(Debug, Clone, Copy)]
enum When {
    Start,
    /// Two minutes on: past the stale horizon (a minute).
    Later,
    /// Past the expiry horizon (a day).
    NextDay,
}

impl When {
    fn offset(self) -> Duration {
        match self {
            When::Start => Duration::zero(),
            When::Later => Duration::minutes(2),
            When::NextDay => Duration::hours(25),
        }
    }
}

/// One step of a script against the idempotency records.
enum Step {
    /// `who` claims `key` for the request hashed `hash`, `when`: it comes to `then`.
    Claim(Who, &'static str, &'static [u8], When, Claim),
    /// `who` completes `key` with [`response`].
    Complete(Who, &'static str),
    Release(Who, &'static str),
}

use Step::{Complete, Release};
use When::{Later, NextDay, Start};
use Who::{Other, User};

fn claims(who: Who, key: &'static str, hash: &'static [u8], when: When, then: Claim) -> Step {
    Step::Claim(who, key, hash, when, then)
}

/// Runs `steps` in order on one store; a failure names its step.
async fn run(backend: Backend, steps: Vec<Step>) {
    let store = backend.store().await;
    let store = &*store;
    let (user, other) = (Uuid::now_v7(), Uuid::now_v7());
    let id = |who| match who {
        User => user,
        Other => other,
    };
    let start = Utc::now();
    for (n, step) in steps.into_iter().enumerate() {
        match step {
            Step::Claim(who, key, hash, when, then) => {
                let clock = Clock::at(start + when.offset());
                let got = claim(store, id(who), key, hash, clock).await;
                let request = String::from_utf8_lossy(hash);
                let step = format!("step {n}: {who:?} claims {key:?} for {request:?} at {when:?}");
                assert_eq!(got, then, "{step}");
            }
            Complete(who, key) => store
                .complete(id(who), key, &response())
                .await
                .expect("complete"),
            Release(who, key) => store.release(id(who), key).await.expect("release"),
        }
    }
}

async fn a_key_is_in_progress_then_replays_its_response(backend: Backend) {
    let steps = vec![
        claims(User, "k", b"req", Start, Claim::Acquired),
        claims(User, "k", b"req", Start, Claim::InProgress),
        // Keys are per user.
        claims(Other, "k", b"req", Start, Claim::Acquired),
        Complete(User, "k"),
        claims(User, "k", b"req", Start, Claim::Done(response())),
        // A completed record is not released.
        Release(User, "k"),
        claims(User, "k", b"req", Start, Claim::Done(response())),
    ];
    run(backend, steps).await;
}

async fn a_key_reused_for_another_request_is_a_mismatch(backend: Backend) {
    let steps = vec![
        claims(User, "k", b"one", Start, Claim::Acquired),
        claims(User, "k", b"two", Start, Claim::Mismatch),
        Complete(User, "k"),
        claims(User, "k", b"two", Start, Claim::Mismatch),
    ];
    run(backend, steps).await;
}

async fn a_released_key_may_be_claimed_again(backend: Backend) {
    let steps = vec![
        claims(User, "k", b"req", Start, Claim::Acquired),
        Release(User, "k"),
        claims(User, "k", b"req", Start, Claim::Acquired),
    ];
    run(backend, steps).await;
}

async fn a_stale_claim_or_an_expired_record_is_taken_over(backend: Backend) {
    let steps = vec![
        claims(User, "dead", b"req", Start, Claim::Acquired),
        // Its request died: a minute and more later the claim is stale.
        claims(User, "dead", b"new", Later, Claim::Acquired),
        claims(User, "done", b"req", Start, Claim::Acquired),
        Complete(User, "done"),
        // A completed record is kept past the stale horizon...
        claims(User, "done", b"req", Later, Claim::Done(response())),
        // ...and forgotten past the expiry one.
        claims(User, "done", b"other", NextDay, Claim::Acquired),
    ];
    run(backend, steps).await;
}

async fn concurrent_claims_acquire_a_key_once(backend: Backend) {
    let store: Arc<dyn Store> = backend.store().await;
    let (user, clock) = (Uuid::now_v7(), Clock::at(Utc::now()));
    let claims: Vec<_> = (0..10)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { claim(&*store, user, "race", b"req", clock).await })
        })
        .collect();
    let mut acquired = 0;
    for c in claims {
        match c.await.expect("task") {
            Claim::Acquired => acquired += 1,
            Claim::InProgress => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(acquired, 1);
}

fn keyed(user_id: Uuid, key: &str) -> Metadata {
    Metadata {
        idempotency: Some(CommandKey {
            user_id,
            key: key.into(),
        }),
        ..Metadata::default()
    }
}

/// What a request that died between its commit and storing its response
/// leaves: a retry finds the commit ([`Claim::Committed`]), which neither a
/// release nor the stale horizon takes away; an append that lost leaves no
/// mark. Through the group commit (tickets) and the single append (projects).
async fn a_keyed_append_marks_its_key_in_its_own_transaction(backend: Backend) {
    let store = backend.store().await;
    let (user, now) = (Uuid::now_v7(), Clock::at(Utc::now()));
    let project_id = create_project(&*store, "MARK").await;
    let ticket_id = Uuid::now_v7();
    for key in ["ticket", "lost", "project"] {
        assert_eq!(claim(&*store, user, key, b"r", now).await, Claim::Acquired);
    }
    let append = |key, events| Append {
        stream_id: ticket_id,
        project_id,
        before: Default::default(),
        events,
        metadata: keyed(user, key),
    };
    let ticket = store
        .append_ticket(append("ticket", vec![created(project_id, ticket_id)]))
        .await
        .expect("append");
    // Decided on version 0 as well: loses its compare-and-set.
    let lost = store.append_ticket(append("lost", vec![retitled(1)])).await;
    assert!(lost.is_err(), "{lost:?}");
    let project = store.load_project(project_id).await.expect("load");
    let announced = ProjectPayload::AnnouncementPosted {
        announcement_id: Uuid::now_v7(),
        title: "t".into(),
        message: "m".into(),
        recipients: Vec::new(),
    };
    let events = vec![Event::new(&meta_now(&alice()), announced)];
    let from = project.version;
    let moved = store
        .append_project(Append {
            stream_id: project_id,
            project_id,
            before: project,
            events,
            metadata: keyed(user, "project"),
        })
        .await
        .expect("append to the project");

    let ticket_mark = Claim::Committed(CommittedCommand {
        stream_id: ticket_id,
        from_version: 0,
        to_version: ticket.state.version,
    });
    let project_mark = Claim::Committed(CommittedCommand {
        stream_id: project_id,
        from_version: from,
        to_version: moved.state.version,
    });
    store.release(user, "ticket").await.expect("release");
    let later = Clock::at(now.now + When::Later.offset());
    for clock in [now, later] {
        assert_eq!(
            claim(&*store, user, "ticket", b"r", clock).await,
            ticket_mark
        );
        assert_eq!(
            claim(&*store, user, "project", b"r", clock).await,
            project_mark
        );
    }
    assert_eq!(
        claim(&*store, user, "lost", b"r", now).await,
        Claim::InProgress
    );
    // A stale claim that committed nothing is taken over.
    assert_eq!(
        claim(&*store, user, "lost", b"r", later).await,
        Claim::Acquired
    );
}

/// Records past the expiry horizon go as later claims are made, whoever
/// makes them.
async fn expired_records_are_purged_by_later_claims(backend: Backend) {
    let store = backend.store().await;
    let (user, other) = (Uuid::now_v7(), Uuid::now_v7());
    let start = Clock::at(Utc::now());
    for n in 0..20 {
        let key = format!("old {n}");
        assert_eq!(
            claim(&*store, user, &key, b"r", start).await,
            Claim::Acquired
        );
        store
            .complete(user, &key, &response())
            .await
            .expect("complete");
    }
    let next_day = Clock::at(start.now + When::NextDay.offset());
    for key in ["new 1", "new 2"] {
        assert_eq!(
            claim(&*store, other, key, b"r", next_day).await,
            Claim::Acquired
        );
    }
    assert_eq!(backend.rows_in("idempotency_keys").await, 2);
}
