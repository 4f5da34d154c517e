//! Faults: a slow store does not hold up other subjects, the stale-if-error
//! window is exact to the millisecond, and an outage loses nothing.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::counting::Counting;
use jwt_revoke::{Algorithm, Cutoff, Error, FakeClock, Guard, Keys, MemoryStore};

const T0: i64 = 1_800_000_000;

fn setup(
    clock: &FakeClock,
    stale: Option<Duration>,
) -> (
    Guard<Arc<Counting<MemoryStore>>>,
    Arc<Counting<MemoryStore>>,
) {
    let store = Arc::new(Counting::new(MemoryStore::with_clock(
        jwt_revoke::FakeClock::new(0),
    )));
    for u in ["alice", "bob"] {
        store.inner.insert(u, Cutoff::default());
    }
    let mut b = Guard::builder(
        Keys::hmac(Algorithm::HS256, common::SECRET).unwrap(),
        store.clone(),
    )
    .clock(clock.clone())
    .cache_ttl(Duration::from_secs(30));
    if let Some(w) = stale {
        b = b.stale_if_error(w);
    }
    (b.build().unwrap(), store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_load_blocks_neither_other_subjects_nor_makes_more_than_one_call() {
    let clock = FakeClock::new(T0);
    let (g, store) = setup(&clock, None);
    let alice = g.issue("alice", &()).await.unwrap();
    let bob = g.issue("bob", &()).await.unwrap();
    g.clear_cache();
    g.validate::<()>(&bob).await.unwrap(); // bob cached again

    let before = store.loads();
    store.hold_loads();
    let mut waiting = Vec::new();
    for _ in 0..100 {
        let (g, t) = (g.clone(), alice.clone());
        waiting.push(tokio::spawn(async move { g.validate::<()>(&t).await }));
    }
    while store.loads() == before {
        tokio::task::yield_now().await;
    }
    // alice's load is held; bob is served from the cache meanwhile.
    for _ in 0..1_000 {
        g.validate::<()>(&bob).await.unwrap();
    }
    assert!(
        waiting.iter().all(|t| !t.is_finished()),
        "alice's validations wait for the store"
    );
    store.release_loads();
    for w in waiting {
        w.await.unwrap().unwrap();
    }
    assert_eq!(
        store.loads() - before,
        1,
        "100 concurrent misses, one store call"
    );
}

#[tokio::test]
async fn the_stale_window_is_exact_to_the_millisecond() {
    let clock = FakeClock::new(T0);
    let (g, store) = setup(&clock, Some(Duration::from_secs(60)));
    let t = g.issue("alice", &()).await.unwrap();
    store.fail(true);
    // Entry expires at T0+30 s; the stale window ends at T0+90 s.
    clock.advance(Duration::from_millis(89_999));
    assert!(g.validate::<()>(&t).await.is_ok());
    clock.advance(Duration::from_millis(1));
    let err = g.validate::<()>(&t).await.unwrap_err();
    assert_eq!((err.code(), err.status()), ("store_unavailable", 503));
    // Subjects never cached get no stale grace at all.
    let bob = {
        store.fail(false);
        let t = g.issue("bob", &()).await.unwrap();
        g.clear_cache();
        store.fail(true);
        t
    };
    assert_eq!(
        g.validate::<()>(&bob).await.unwrap_err().code(),
        "store_unavailable"
    );
    // Recovery without a restart.
    store.fail(false);
    assert!(g.validate::<()>(&t).await.is_ok());
    assert!(g.validate::<()>(&bob).await.is_ok());
}

#[tokio::test]
async fn a_revoked_token_stays_revoked_through_an_outage_even_with_stale_if_error() {
    let clock = FakeClock::new(T0);
    let (g, store) = setup(&clock, Some(Duration::from_secs(3_600)));
    let t = g.issue("alice", &()).await.unwrap();
    g.bump_version("alice").await.unwrap();
    store.fail(true);
    for step in 0..10 {
        clock.advance(Duration::from_secs(20));
        let err = g.validate::<()>(&t).await.unwrap_err();
        assert!(
            matches!(err, Error::Revoked(_) | Error::StoreUnavailable(_)),
            "step {step}: {err:?}"
        );
    }
}
