//! Idempotency-Key records, on both backends (see `support`).

mod support;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use ticketflow_store::{Claim, StoredResponse};
use uuid::Uuid;

use support::{Backend, Store};

on_both_backends!(
    a_key_is_in_progress_then_replays_its_response,
    a_key_reused_for_another_request_is_a_mismatch,
    a_released_key_may_be_claimed_again,
    a_stale_claim_or_an_expired_record_is_taken_over,
    concurrent_claims_acquire_a_key_once,
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

async fn a_key_is_in_progress_then_replays_its_response(backend: Backend) {
    let store = backend.store().await;
    let store = &*store;
    let (user, clock) = (Uuid::now_v7(), Clock::at(Utc::now()));
    assert_eq!(
        claim(store, user, "k", b"req", clock).await,
        Claim::Acquired
    );
    assert_eq!(
        claim(store, user, "k", b"req", clock).await,
        Claim::InProgress
    );
    // Keys are per user.
    let other = Uuid::now_v7();
    assert_eq!(
        claim(store, other, "k", b"req", clock).await,
        Claim::Acquired
    );

    store
        .complete(user, "k", &response())
        .await
        .expect("complete");
    assert_eq!(
        claim(store, user, "k", b"req", clock).await,
        Claim::Done(response())
    );
    // A completed record is not released.
    store.release(user, "k").await.expect("release");
    assert_eq!(
        claim(store, user, "k", b"req", clock).await,
        Claim::Done(response())
    );
}

async fn a_key_reused_for_another_request_is_a_mismatch(backend: Backend) {
    let store = backend.store().await;
    let store = &*store;
    let (user, clock) = (Uuid::now_v7(), Clock::at(Utc::now()));
    assert_eq!(
        claim(store, user, "k", b"one", clock).await,
        Claim::Acquired
    );
    assert_eq!(
        claim(store, user, "k", b"two", clock).await,
        Claim::Mismatch
    );
    store
        .complete(user, "k", &response())
        .await
        .expect("complete");
    assert_eq!(
        claim(store, user, "k", b"two", clock).await,
        Claim::Mismatch
    );
}

async fn a_released_key_may_be_claimed_again(backend: Backend) {
    let store = backend.store().await;
    let store = &*store;
    let (user, clock) = (Uuid::now_v7(), Clock::at(Utc::now()));
    assert_eq!(
        claim(store, user, "k", b"req", clock).await,
        Claim::Acquired
    );
    store.release(user, "k").await.expect("release");
    assert_eq!(
        claim(store, user, "k", b"req", clock).await,
        Claim::Acquired
    );
}

async fn a_stale_claim_or_an_expired_record_is_taken_over(backend: Backend) {
    let store = backend.store().await;
    let store = &*store;
    let user = Uuid::now_v7();
    let start = Utc::now();
    assert_eq!(
        claim(store, user, "dead", b"req", Clock::at(start)).await,
        Claim::Acquired
    );
    // Its request died: a minute and more later the claim is stale.
    let later = Clock::at(start + Duration::minutes(2));
    assert_eq!(
        claim(store, user, "dead", b"new", later).await,
        Claim::Acquired
    );

    assert_eq!(
        claim(store, user, "done", b"req", Clock::at(start)).await,
        Claim::Acquired
    );
    store
        .complete(user, "done", &response())
        .await
        .expect("complete");
    // A completed record is kept past the stale horizon...
    assert_eq!(
        claim(store, user, "done", b"req", later).await,
        Claim::Done(response())
    );
    // ...and forgotten past the expiry one.
    let next_day = Clock::at(start + Duration::hours(25));
    assert_eq!(
        claim(store, user, "done", b"other", next_day).await,
        Claim::Acquired
    );
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
