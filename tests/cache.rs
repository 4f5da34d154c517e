//! The cutoff cache as seen through the guard: hits never reach the store,
//! TTL, bounds, single flight, negative caching, failure modes, and the
//! races that must not resurrect a revoked token.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::fixture::{Store, T0, setup};
use jwt_revoke::{Algorithm, Cutoff, Error, FakeClock, Guard, Keys, MemoryStore, RevokedReason};

#[tokio::test]
async fn hits_never_reach_the_store_until_the_ttl_expires() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b.cache_ttl(Duration::from_secs(30)).build().unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    assert_eq!(
        store.loads(),
        1,
        "issue reads the store and warms the cache"
    );
    for _ in 0..100 {
        g.validate::<()>(&t).await.unwrap();
    }
    assert_eq!(store.loads(), 1);
    clock.advance(Duration::from_millis(29_999));
    g.validate::<()>(&t).await.unwrap();
    assert_eq!(store.loads(), 1, "still fresh just before the TTL");
    clock.advance(Duration::from_millis(1));
    g.validate::<()>(&t).await.unwrap();
    assert_eq!(store.loads(), 2, "reloaded at the TTL");
    g.validate::<()>(&t).await.unwrap();
    assert_eq!(store.loads(), 2);
}

#[tokio::test]
async fn revocation_on_the_same_guard_needs_no_reload_and_has_no_window() {
    let (_clock, store, b) = setup(&["alice"]);
    let g = b.build().unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    g.validate::<()>(&t).await.unwrap();
    let loads = store.loads();
    g.bump_version("alice").await.unwrap();
    assert!(matches!(
        g.validate::<()>(&t).await,
        Err(Error::Revoked(RevokedReason::Version))
    ));
    assert_eq!(
        store.loads(),
        loads,
        "the revoking guard merged the new cutoff itself"
    );
}

#[tokio::test]
async fn another_instance_sees_a_revocation_within_the_ttl() {
    // Two guards over one store, no bus: the bound is the cache TTL.
    let clock = FakeClock::new(T0);
    let store = Arc::new(MemoryStore::with_clock(jwt_revoke::FakeClock::new(0)));
    store.insert("alice", Cutoff::default());
    let mk = || {
        Guard::builder(
            Keys::hmac(Algorithm::HS256, common::SECRET).unwrap(),
            store.clone(),
        )
        .clock(clock.clone())
        .cache_ttl(Duration::from_secs(30))
        .build()
        .unwrap()
    };
    let (one, two) = (mk(), mk());
    let t = one.issue("alice", &()).await.unwrap();
    two.validate::<()>(&t).await.unwrap();
    one.bump_version("alice").await.unwrap();
    assert!(one.validate::<()>(&t).await.is_err());
    assert!(
        two.validate::<()>(&t).await.is_ok(),
        "the other instance still trusts its cached cutoff"
    );
    clock.advance(Duration::from_secs(30));
    assert_eq!(
        two.validate::<()>(&t).await.unwrap_err().code(),
        "token_revoked"
    );
}

#[tokio::test]
async fn the_entry_bound_holds_under_many_subjects() {
    let names: Vec<String> = (0..3_000).map(|i| format!("user-{i}")).collect();
    let (_clock, store, b) = setup(&[]);
    for n in &names {
        store.inner.insert(n.as_str(), Cutoff::default());
    }
    let g = b.max_entries(200).build().unwrap();
    let mut tokens = Vec::new();
    for n in &names {
        tokens.push(g.issue(n, &()).await.unwrap());
        assert!(g.cached_subjects() <= 200, "{}", g.cached_subjects());
    }
    for t in &tokens {
        g.validate::<()>(t).await.unwrap();
        assert!(g.cached_subjects() <= 200);
    }
    // Evicted subjects still validate (reloaded) and revocations still bite.
    g.bump_version("user-7").await.unwrap();
    assert_eq!(
        g.validate::<()>(&tokens[7]).await.unwrap_err().code(),
        "token_revoked"
    );
    assert!(g.cached_subjects() <= 200);
}

#[tokio::test]
async fn a_thousand_concurrent_misses_make_one_store_load() {
    let (_clock, store, b) = setup(&["alice"]);
    let g = b.build().unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    g.clear_cache();
    let before = store.loads();
    let gate = store.hold_loads();
    let mut tasks = Vec::new();
    for _ in 0..1_000 {
        let (g, t) = (g.clone(), t.clone());
        tasks.push(tokio::spawn(async move { g.validate::<()>(&t).await }));
    }
    // Current-thread runtime: yielding lets every task run up to its wait.
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        store.loads() - before,
        1,
        "all 1000 misses wait on one load"
    );
    drop(gate);
    store.release_loads();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(store.loads() - before, 1);
}

#[tokio::test]
async fn unknown_subjects_are_cached_negatively_for_a_short_time() {
    let (clock, store, b) = setup(&["bob"]);
    let g = b.negative_ttl(Duration::from_secs(5)).build().unwrap();
    let t = g.issue("bob", &()).await.unwrap();
    store.inner.remove("bob");
    g.clear_cache();
    let before = store.loads();
    for _ in 0..50 {
        assert_eq!(
            g.validate::<()>(&t).await.unwrap_err().code(),
            "unknown_subject"
        );
    }
    assert_eq!(store.loads() - before, 1);
    assert_eq!(g.cached_unknown_subjects(), 1);
    clock.advance(Duration::from_secs(5));
    assert!(g.validate::<()>(&t).await.is_err());
    assert_eq!(store.loads() - before, 2);
    // A write through the guard makes the subject known at once.
    g.revoke_before("bob", T0 - 10).await.unwrap();
    assert!(g.validate::<()>(&t).await.is_ok());
    assert_eq!(g.cached_unknown_subjects(), 0);
}

#[tokio::test]
async fn store_outage_fails_closed_on_misses_and_recovers() {
    let (clock, store, b) = setup(&["alice", "bob"]);
    let g = b.build().unwrap();
    let alice = g.issue("alice", &()).await.unwrap();
    let bob = g.issue("bob", &()).await.unwrap();
    g.clear_cache();
    g.validate::<()>(&alice).await.unwrap();

    store.fail(true);
    assert!(
        g.validate::<()>(&alice).await.is_ok(),
        "cached within the TTL"
    );
    let err = g.validate::<()>(&bob).await.unwrap_err();
    assert_eq!((err.code(), err.status()), ("store_unavailable", 503));
    assert!(!err.is_client_error());
    clock.advance(Duration::from_secs(30));
    assert_eq!(
        g.validate::<()>(&alice).await.unwrap_err().code(),
        "store_unavailable"
    );
    // A revocation cannot be written while the store is down; it reports so.
    assert_eq!(
        g.bump_version("alice").await.unwrap_err().code(),
        "store_unavailable"
    );

    store.fail(false);
    assert!(g.validate::<()>(&alice).await.is_ok());
    assert!(g.validate::<()>(&bob).await.is_ok());
}

#[tokio::test]
async fn stale_if_error_serves_a_cached_cutoff_for_the_window_only() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b
        .cache_ttl(Duration::from_secs(30))
        .stale_if_error(Duration::from_secs(60))
        .build()
        .unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    store.fail(true);
    clock.advance(Duration::from_secs(30 + 59));
    let r = g.validate::<()>(&t).await;
    assert!(r.is_ok(), "stale but inside the window: {r:?}");
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        g.validate::<()>(&t).await.unwrap_err().code(),
        "store_unavailable"
    );
}

type Racing = tokio::task::JoinHandle<Result<jwt_revoke::Verified, Error>>;

/// The common start of the race tests: a validation of alice's version-0
/// token misses, its store load reads version 0 and is held; meanwhile
/// alice logs out everywhere and her cache entry is evicted. Returns the
/// guard, the store, the old token, the held validation and the load count
/// before it.
async fn held_load_then_bump_and_evict() -> (Guard<Store>, Store, String, Racing, usize) {
    let (_clock, store, b) = setup(&["alice"]);
    let g = b.build().unwrap();
    let old = g.issue("alice", &()).await.unwrap();
    g.clear_cache();

    let before = store.loads();
    // The store keeps the gate closed until `release_loads`.
    store.hold_loads();
    let (g1, t1) = (g.clone(), old.clone());
    let racing = tokio::spawn(async move { g1.validate::<()>(&t1).await });
    while store.loads() == before {
        tokio::task::yield_now().await;
    }
    g.bump_version("alice").await.unwrap();
    g.clear_cache();
    (g, store, old, racing, before)
}

#[tokio::test]
async fn a_slow_load_that_read_old_data_cannot_resurrect_a_revoked_token_after_eviction() {
    let (g, store, old, racing, _) = held_load_then_bump_and_evict().await;
    store.release_loads();
    // The racing validation started before the bump returned: either
    // answer is linearizable. What matters is what it left in the cache.
    let _ = racing.await.unwrap();
    assert!(
        matches!(
            g.validate::<()>(&old).await,
            Err(Error::Revoked(RevokedReason::Version))
        ),
        "the old cutoff must not have been cached"
    );
}

#[tokio::test]
async fn a_validation_started_after_a_bump_never_joins_an_older_flight() {
    let (g, store, old, first, before) = held_load_then_bump_and_evict().await;
    // Starts after bump_version returned: must see version 1.
    let (g2, t2) = (g.clone(), old.clone());
    let second = tokio::spawn(async move { g2.validate::<()>(&t2).await });
    // Bounded: a validation wrongly joining the old flight makes no load.
    for _ in 0..1_000 {
        if store.loads() >= before + 2 {
            break;
        }
        tokio::task::yield_now().await;
    }
    store.release_loads();
    let _ = first.await.unwrap();
    assert!(matches!(
        second.await.unwrap(),
        Err(Error::Revoked(RevokedReason::Version))
    ));
}

#[tokio::test]
async fn global_cutoff_is_cached_and_refreshed_with_the_ttl() {
    let (clock, store, b) = setup(&["alice"]);
    let g = b.build().unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    g.validate::<()>(&t).await.unwrap();
    let global_loads = store.global_loads.load(std::sync::atomic::Ordering::SeqCst);
    for _ in 0..20 {
        g.validate::<()>(&t).await.unwrap();
    }
    assert_eq!(
        store.global_loads.load(std::sync::atomic::Ordering::SeqCst),
        global_loads
    );
    // Revoked globally through the store directly (another instance).
    use jwt_revoke::CutoffStore;
    store.inner.revoke_all_before(T0).await.unwrap();
    assert!(g.validate::<()>(&t).await.is_ok(), "within the TTL");
    clock.advance(Duration::from_secs(30));
    assert!(matches!(
        g.validate::<()>(&t).await,
        Err(Error::Revoked(RevokedReason::Global))
    ));
}

#[tokio::test]
async fn forget_rejects_a_deleted_user_at_once_without_a_store_load() {
    let (clock, store, b) = setup(&["alice", "bob"]);
    let g = b.negative_ttl(Duration::from_secs(5)).build().unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    let bob = g.issue("bob", &()).await.unwrap();
    g.validate::<()>(&t).await.unwrap();
    store.inner.remove("alice");
    g.forget("alice");
    let loads = store.loads();
    assert_eq!(
        g.validate::<()>(&t).await.unwrap_err().code(),
        "unknown_subject"
    );
    assert_eq!(store.loads(), loads, "answered from the negative entry");
    g.validate::<()>(&bob).await.unwrap();
    // After the negative TTL the store decides, and still says unknown.
    clock.advance(Duration::from_secs(6));
    assert_eq!(
        g.validate::<()>(&t).await.unwrap_err().code(),
        "unknown_subject"
    );
    assert_eq!(store.loads(), loads + 1);
}

#[tokio::test]
async fn forget_wins_over_a_load_already_under_way() {
    let (_clock, store, b) = setup(&["alice"]);
    let g = b.build().unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    g.clear_cache();
    let held = store.hold_loads();
    let racing = tokio::spawn({
        let (g, t) = (g.clone(), t.clone());
        async move { g.validate::<()>(&t).await.map(|_| ()) }
    });
    while store.loads() < 2 {
        tokio::task::yield_now().await;
    }
    // The load read alice before she was deleted.
    store.inner.remove("alice");
    g.forget("alice");
    held.add_permits(100);
    let _ = racing.await.unwrap();
    store.gate.lock().unwrap().take();
    assert_eq!(
        g.validate::<()>(&t).await.unwrap_err().code(),
        "unknown_subject"
    );
}
