//! Regressions: each test pins a defect that was found and fixed.
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::counting::Counting;
use jwt_revoke::{
    Algorithm, Cutoff, CutoffStore, Error, FakeClock, Guard, Keys, MemoryStore, RevokedReason,
    StoreError,
};

const T0: i64 = 1_800_000_000;

fn keys() -> Keys {
    Keys::hmac(Algorithm::HS256, common::SECRET).unwrap()
}

/// A lock shorter than the leeway (`revoke_before` with `at` a few seconds
/// ahead) must refuse logins: a token stamped with a future `iat` would
/// validate at once and outlive a later "log out everywhere now".
#[tokio::test]
async fn issue_refuses_logins_during_a_lock_shorter_than_the_leeway() {
    let clock = FakeClock::new(T0);
    let store = MemoryStore::with_clock(jwt_revoke::FakeClock::new(0));
    store.insert("alice", Cutoff::default());
    let g = Guard::builder(keys(), store)
        .clock(clock.clone())
        .build()
        .unwrap();
    g.revoke_before("alice", T0 + 30).await.unwrap();
    assert!(matches!(
        g.issue("alice", &()).await,
        Err(Error::Revoked(RevokedReason::NotBefore))
    ));
    // The same-second case still works: at = now stamps iat = now + 1.
    clock.set(T0 + 30);
    let t = g.issue("alice", &()).await.unwrap();
    assert_eq!(g.validate::<()>(&t).await.unwrap().issued_at(), T0 + 31);
}

/// A store whose global load is slow and then fails.
struct SlowGlobal {
    inner: MemoryStore,
    global_loads: AtomicUsize,
}

impl CutoffStore for SlowGlobal {
    async fn load(&self, sub: &str) -> Result<Option<Cutoff>, StoreError> {
        self.inner.load(sub).await
    }
    async fn bump_version(&self, sub: &str) -> Result<Cutoff, StoreError> {
        self.inner.bump_version(sub).await
    }
    async fn revoke_before(&self, sub: &str, at: i64) -> Result<Cutoff, StoreError> {
        self.inner.revoke_before(sub, at).await
    }
    async fn load_global(&self) -> Result<i64, StoreError> {
        let n = self.global_loads.fetch_add(1, Ordering::SeqCst);
        if n == 0 {
            return Ok(0); // the one in `issue`
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        Err(StoreError::msg("timeout"))
    }
}

/// A failed refresh of the global cutoff is shared with the callers queued
/// behind it; otherwise each repeats the slow, failing load in turn and the
/// k-th concurrent validation fails after k × the store timeout.
#[tokio::test(start_paused = true)]
async fn a_failed_global_refresh_is_shared_not_repeated_by_every_waiter() {
    let clock = FakeClock::new(T0);
    let inner = MemoryStore::with_clock(jwt_revoke::FakeClock::new(0));
    inner.insert("alice", Cutoff::default());
    let store = Arc::new(SlowGlobal {
        inner,
        global_loads: AtomicUsize::new(0),
    });
    let g = Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let t = g.issue("alice", &()).await.unwrap();
    clock.advance(Duration::from_secs(31)); // global cache expired
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (g, t) = (g.clone(), t.clone());
        tasks.push(tokio::spawn(async move { g.validate::<()>(&t).await }));
    }
    for task in tasks {
        assert!(matches!(
            task.await.unwrap(),
            Err(Error::StoreUnavailable(_))
        ));
    }
    let elapsed = start.elapsed();
    let loads = store.global_loads.load(Ordering::SeqCst) - 1;
    assert!(
        loads <= 1 && elapsed < Duration::from_secs(2),
        "{loads} serialized global loads, {elapsed:?}"
    );
}

/// A load that read "unknown subject" before a revocation re-created the
/// subject must not remove the revocation's cache entry (a floor) nor
/// cache "unknown": after `bump_version` returns, no request sees the old
/// cutoff.
#[tokio::test]
async fn an_unknown_subject_load_racing_a_revocation_keeps_its_entry() {
    let clock = FakeClock::new(T0);
    let store = Arc::new(Counting::new(MemoryStore::with_clock(
        jwt_revoke::FakeClock::new(0),
    )));
    store.inner.insert("alice", Cutoff::default());
    let g = Guard::builder(keys(), store.clone())
        .clock(clock.clone())
        .stale_if_error(Duration::from_secs(600))
        .build()
        .unwrap();
    let old = g.issue("alice", &()).await.unwrap();
    store.inner.remove("alice");
    g.clear_cache();
    let before = store.loads();
    store.hold_loads();
    let (g1, t1) = (g.clone(), old.clone());
    let racing = tokio::spawn(async move { g1.validate::<()>(&t1).await });
    while store.loads() == before {
        tokio::task::yield_now().await;
    }
    // Re-creates alice (upsert), version 1; the local cache now holds it.
    g.bump_version("alice").await.unwrap();
    store.release_loads();
    let _ = racing.await.unwrap();
    let r = g.validate::<()>(&old).await;
    assert!(
        matches!(r, Err(Error::Revoked(RevokedReason::Version))),
        "{r:?}"
    );
    // With the store down, the revocation's floor still holds: no stale
    // "unknown" or older answer lets the token through.
    store.fail(true);
    let r = g.validate::<()>(&old).await;
    assert!(r.is_err(), "{r:?}");
}

/// `MemoryStore::bump_version` at `u64::MAX` must fail like the other
/// stores, not report success while changing nothing.
#[tokio::test]
async fn memory_store_bump_at_the_maximum_is_an_error() {
    let store = MemoryStore::with_clock(jwt_revoke::FakeClock::new(0));
    store.insert("alice", Cutoff::new(u64::MAX, 0));
    assert!(
        store.bump_version("alice").await.is_err(),
        "a saturated bump must not report success"
    );
}

/// `issue` reads the store itself: it must not join a load that a validation
/// started before a revocation made on another instance (this guard's
/// epochs cannot see it), or the login would get the old version and be
/// logged out again moments later.
#[tokio::test]
async fn issue_never_joins_a_load_that_started_before_it() {
    let store = Arc::new(Counting::new(MemoryStore::with_clock(
        jwt_revoke::FakeClock::new(0),
    )));
    store.inner.insert("alice", Cutoff::default());
    let g = Guard::builder(keys(), store.clone())
        .clock(FakeClock::new(T0))
        .build()
        .unwrap();
    let old = g.issue("alice", &()).await.unwrap();
    g.clear_cache();
    let before = store.loads();
    store.hold_loads();
    let (g1, t1) = (g.clone(), old.clone());
    let validation = tokio::spawn(async move { g1.validate::<()>(&t1).await });
    while store.loads() == before {
        tokio::task::yield_now().await;
    }
    // Another instance changes the password: the store moves to version 1.
    store.inner.bump_version("alice").await.unwrap();
    let g2 = g.clone();
    let login = tokio::spawn(async move { g2.issue("alice", &()).await });
    for _ in 0..1_000 {
        if store.loads() >= before + 2 {
            break;
        }
        tokio::task::yield_now().await;
    }
    store.release_loads();
    let _ = validation.await.unwrap();
    let token = login.await.unwrap().unwrap();
    assert_eq!(g.validate::<()>(&token).await.unwrap().version(), Some(1));
}
