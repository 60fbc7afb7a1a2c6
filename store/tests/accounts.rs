//! Accounts and refresh tokens, on both backends (see `support`).

use std::sync::Arc;

use chrono::{Duration, SubsecRound, Utc};
use ticketflow_store::{NewUser, RefreshOutcome, StoreError, User};
use uuid::Uuid;

use ticketflow_testkit::backend::{Backend, Store};

ticketflow_testkit::on_both_backends!(
    users_are_found_by_name_and_id,
    a_taken_username_is_refused,
    a_refresh_token_rotates_once_and_reuse_revokes_the_family,
    an_expired_or_unknown_refresh_token_is_invalid,
    concurrent_rotations_of_one_token_rotate_it_once,
    revoking_a_family_by_any_of_its_tokens_ends_it,
    a_password_change_revokes_every_family_of_its_user_only,
    a_session_starts_only_on_the_password_just_checked,
);

fn new_user(username: &str) -> NewUser {
    NewUser {
        user: User {
            user_id: Uuid::now_v7(),
            username: username.into(),
            display_name: format!("{username} display"),
            created_at: Utc::now().trunc_subsecs(6),
        },
        password_hash: format!("hash of {username}"),
    }
}

/// The password hash [`new_user`] gives `user`.
fn hash_of(user: &User) -> String {
    format!("hash of {}", user.username)
}

async fn create(store: &dyn Store, username: &str) -> User {
    let new = new_user(username);
    let user = new.user.clone();
    store.create_user(new).await.expect("create user");
    user
}

async fn users_are_found_by_name_and_id(backend: Backend) {
    let store = backend.store().await;
    let alice = create(&*store, "alice").await;
    let found = store
        .user_by_username("alice")
        .await
        .expect("by name")
        .expect("alice exists");
    assert_eq!(found.user, alice);
    assert_eq!(found.password_hash, "hash of alice");
    assert_eq!(
        store.user_by_id(alice.user_id).await.expect("by id"),
        Some(alice)
    );
    assert!(store
        .user_by_username("bob")
        .await
        .expect("by name")
        .is_none());
    let nobody = store.user_by_id(Uuid::now_v7()).await.expect("by id");
    assert_eq!(nobody, None);
}

async fn a_taken_username_is_refused(backend: Backend) {
    let store = backend.store().await;
    let first = create(&*store, "carol").await;
    let again = store.create_user(new_user("carol")).await;
    assert!(
        matches!(again, Err(StoreError::Taken("username"))),
        "{again:?}"
    );
    let kept = store.user_by_username("carol").await.expect("by name");
    assert_eq!(kept.expect("carol exists").user, first);
}

async fn a_refresh_token_rotates_once_and_reuse_revokes_the_family(backend: Backend) {
    let store = backend.store().await;
    let user = create(&*store, "dave").await;
    let now = Utc::now();
    let later = now + Duration::hours(1);
    let family = Uuid::now_v7();
    store
        .insert_refresh_token(b"first", family, user.user_id, &hash_of(&user), later)
        .await
        .expect("insert");

    let rotated = store.rotate_refresh_token(b"first", b"second", now, later);
    assert_eq!(
        rotated.await.expect("rotate"),
        RefreshOutcome::Rotated {
            user_id: user.user_id,
            family_id: family
        }
    );
    // The successor is live until the used token comes back.
    let reused = store.rotate_refresh_token(b"first", b"third", now, later);
    assert_eq!(
        reused.await.expect("reuse"),
        RefreshOutcome::Reused { family_id: family }
    );
    let revoked = store.rotate_refresh_token(b"second", b"fourth", now, later);
    assert_eq!(revoked.await.expect("revoked"), RefreshOutcome::Invalid);

    // Another login's family is untouched.
    let other = Uuid::now_v7();
    store
        .insert_refresh_token(b"other", other, user.user_id, &hash_of(&user), later)
        .await
        .expect("insert");
    let fine = store.rotate_refresh_token(b"other", b"other next", now, later);
    assert!(matches!(
        fine.await.expect("rotate"),
        RefreshOutcome::Rotated { .. }
    ));
}

async fn an_expired_or_unknown_refresh_token_is_invalid(backend: Backend) {
    let store = backend.store().await;
    let user = create(&*store, "erin").await;
    let now = Utc::now();
    store
        .insert_refresh_token(b"old", Uuid::now_v7(), user.user_id, &hash_of(&user), now)
        .await
        .expect("insert");
    let expired = store.rotate_refresh_token(b"old", b"new", now, now + Duration::hours(1));
    assert_eq!(expired.await.expect("rotate"), RefreshOutcome::Invalid);
    let unknown = store.rotate_refresh_token(b"never", b"new", now, now + Duration::hours(1));
    assert_eq!(unknown.await.expect("rotate"), RefreshOutcome::Invalid);
}

/// Presented many times at once, a token is rotated exactly once; the others
/// are reuses (revoking the family) or, once the revocation is visible,
/// invalid.
async fn concurrent_rotations_of_one_token_rotate_it_once(backend: Backend) {
    let store: Arc<dyn Store> = backend.store().await;
    let user = create(&*store, "frank").await;
    let now = Utc::now();
    let later = now + Duration::hours(1);
    store
        .insert_refresh_token(
            b"shared",
            Uuid::now_v7(),
            user.user_id,
            &hash_of(&user),
            later,
        )
        .await
        .expect("insert");
    let tries: Vec<_> = (0..10u8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .rotate_refresh_token(b"shared", &[b'n', i], now, later)
                    .await
                    .expect("rotate")
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tries {
        outcomes.push(t.await.expect("task"));
    }
    let count = |f: fn(&RefreshOutcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    assert_eq!(count(|o| matches!(o, RefreshOutcome::Rotated { .. })), 1);
    assert!(
        count(|o| matches!(o, RefreshOutcome::Reused { .. })) >= 1,
        "{outcomes:?}"
    );
}

async fn revoking_a_family_by_any_of_its_tokens_ends_it(backend: Backend) {
    let store = backend.store().await;
    let user = create(&*store, "gina").await;
    let now = Utc::now().trunc_subsecs(6);
    let later = now + Duration::hours(1);
    let family = Uuid::now_v7();
    store
        .insert_refresh_token(b"one", family, user.user_id, &hash_of(&user), later)
        .await
        .expect("insert");
    let rotated = store.rotate_refresh_token(b"one", b"two", now, later);
    assert!(matches!(
        rotated.await.expect("rotate"),
        RefreshOutcome::Rotated { .. }
    ));
    // The used token still names its family.
    let revoked = store.revoke_refresh_family(b"one", now).await;
    assert_eq!(revoked.expect("revoke"), Some(family));
    let again = store.revoke_refresh_family(b"two", now).await;
    assert_eq!(again.expect("revoke again"), Some(family));
    let next = store.rotate_refresh_token(b"two", b"three", now, later);
    assert_eq!(next.await.expect("rotate"), RefreshOutcome::Invalid);
    let unknown = store.revoke_refresh_family(b"never issued", now).await;
    assert_eq!(unknown.expect("unknown"), None);

    let since = store.revoked_families_since(now - Duration::seconds(1));
    assert_eq!(since.await.expect("since"), vec![(family, now)]);
    let after = store.revoked_families_since(now).await.expect("after");
    assert!(after.is_empty(), "{after:?}");
}

async fn a_password_change_revokes_every_family_of_its_user_only(backend: Backend) {
    let store = backend.store().await;
    let user = create(&*store, "hank").await;
    let other = create(&*store, "iris").await;
    let now = Utc::now().trunc_subsecs(6);
    let later = now + Duration::hours(1);
    let (first, second, theirs) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    for (token, family, owner) in [
        (&b"h1"[..], first, &user),
        (b"h2", second, &user),
        (b"h3", second, &user),
        (b"i1", theirs, &other),
    ] {
        store
            .insert_refresh_token(token, family, owner.user_id, &hash_of(owner), later)
            .await
            .expect("insert");
    }
    store
        .revoke_refresh_family(b"h1", now)
        .await
        .expect("revoke");

    let revoked = store
        .change_password(user.user_id, "new hash", now)
        .await
        .expect("change");
    assert_eq!(revoked, vec![second], "the one still live, once");
    let hash = store.password_hash(user.user_id).await.expect("hash");
    assert_eq!(hash.as_deref(), Some("new hash"));
    let kept = store.password_hash(other.user_id).await.expect("hash");
    assert_eq!(kept.as_deref(), Some("hash of iris"));
    let theirs_rotates = store.rotate_refresh_token(b"i1", b"i2", now, later);
    assert!(matches!(
        theirs_rotates.await.expect("rotate"),
        RefreshOutcome::Rotated { .. }
    ));
    let mine = store.rotate_refresh_token(b"h3", b"h4", now, later);
    assert_eq!(mine.await.expect("rotate"), RefreshOutcome::Invalid);
    let none = store.password_hash(Uuid::now_v7()).await.expect("hash");
    assert_eq!(none, None);
}

async fn a_session_starts_only_on_the_password_just_checked(backend: Backend) {
    let store = backend.store().await;
    let user = create(&*store, "jane").await;
    let now = Utc::now();
    let later = now + Duration::hours(1);
    let checked = hash_of(&user);
    let insert = |token: &'static [u8], hash: String| {
        let store = store.clone();
        async move {
            store
                .insert_refresh_token(token, Uuid::now_v7(), user.user_id, &hash, later)
                .await
                .expect("insert")
        }
    };
    assert!(insert(b"before", checked.clone()).await);
    store
        .change_password(user.user_id, "changed", now)
        .await
        .expect("change");
    // A login that checked the old password as it changed.
    assert!(!insert(b"stale", checked).await);
    let stale = store.rotate_refresh_token(b"stale", b"next", now, later);
    assert_eq!(stale.await.expect("rotate"), RefreshOutcome::Invalid);
    assert!(insert(b"after", "changed".to_string()).await);
}
