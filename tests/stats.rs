//! Every outcome is counted: the dependency-free `Guard::stats()` snapshot,
//! and (feature `metrics`) the same counters through the `metrics` facade.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::counting::Counting;
use jwt_revoke::{Algorithm, Cutoff, CutoffEvent, FakeClock, Guard, Keys, MemoryStore};

const T0: i64 = 1_800_000_000;

fn guard(
    store: Arc<Counting<MemoryStore>>,
    clock: &FakeClock,
) -> Guard<Arc<Counting<MemoryStore>>> {
    Guard::builder(Keys::hmac(Algorithm::HS256, common::SECRET).unwrap(), store)
        .clock(clock.clone())
        .max_entries(10)
        .stale_if_error(Duration::from_secs(60))
        .build()
        .unwrap()
}

#[tokio::test]
async fn stats_count_every_outcome() {
    let clock = FakeClock::new(T0);
    let store = Arc::new(Counting::new(MemoryStore::with_clock(
        jwt_revoke::FakeClock::new(0),
    )));
    for i in 0..20 {
        store.inner.insert(format!("user-{i}"), Cutoff::default());
    }
    let g = guard(store.clone(), &clock);
    assert_eq!(g.stats(), jwt_revoke::metrics::Stats::default());

    let t = g.issue("user-0", &()).await.unwrap();
    g.validate::<()>(&t).await.unwrap(); // hit
    g.validate::<()>(&t).await.unwrap(); // hit
    assert!(g.validate::<()>("garbage").await.is_err()); // malformed
    g.bump_version("user-0").await.unwrap();
    assert!(g.validate::<()>(&t).await.is_err()); // hit (entry raised), revoked
    g.apply_event(&CutoffEvent::Global { not_before: 0 })
        .unwrap();
    assert!(
        g.apply_event(&CutoffEvent::Global {
            not_before: T0 * 1000
        })
        .is_err()
    );
    let s = g.stats();
    assert_eq!(s.accepted, 2);
    assert_eq!(s.rejected, 2);
    assert_eq!(
        s.rejected_by_code,
        vec![("malformed", 1), ("token_revoked", 1)]
    );
    assert_eq!(s.revoked_by_version, 1);
    assert_eq!((s.cache_hits, s.cache_misses), (3, 0));
    assert_eq!(s.revocations, 1);
    assert_eq!((s.events_applied, s.events_refused), (1, 1));

    // Store outage: one stale answer, then errors.
    let fresh = g.issue("user-0", &()).await.unwrap();
    g.validate::<()>(&fresh).await.unwrap();
    clock.advance(Duration::from_secs(31));
    store.fail(true);
    g.validate::<()>(&fresh).await.unwrap();
    let s = g.stats();
    assert_eq!(s.stale_answers, 2, "subject and global answered stale");
    assert!(s.store_errors >= 1);
    store.fail(false);

    // Eviction: more subjects than max_entries.
    for i in 1..20 {
        let t = g.issue(&format!("user-{i}"), &()).await.unwrap();
        g.validate::<()>(&t).await.unwrap();
    }
    let s = g.stats();
    assert!(s.evictions > 0);
    assert!(s.cached_subjects <= 10);
    assert_eq!(s.loads_in_flight, 0);
}

#[tokio::test]
async fn concurrent_misses_count_one_load_and_the_joins() {
    let clock = FakeClock::new(T0);
    let store = Arc::new(Counting::new(MemoryStore::with_clock(
        jwt_revoke::FakeClock::new(0),
    )));
    store.inner.insert("alice", Cutoff::default());
    let g = guard(store.clone(), &clock);
    let t = g.issue("alice", &()).await.unwrap();
    g.clear_cache();
    let before = g.stats();
    let held = store.hold_loads();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (g, t) = (g.clone(), t.clone());
            tokio::spawn(async move { g.validate::<()>(&t).await.map(|_| ()) })
        })
        .collect();
    while g.loads_in_flight() == 0 || store.loads() < 2 {
        tokio::task::yield_now().await;
    }
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    held.add_permits(100);
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let s = g.stats();
    assert_eq!(s.store_loads - before.store_loads, 1);
    assert_eq!(s.flight_joins - before.flight_joins, 9);
    assert_eq!(s.cache_misses - before.cache_misses, 10);
}

#[cfg(feature = "metrics")]
#[tokio::test]
async fn counters_reach_the_metrics_facade() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let clock = FakeClock::new(T0);
    let store = Arc::new(Counting::new(MemoryStore::with_clock(
        jwt_revoke::FakeClock::new(0),
    )));
    store.inner.insert("alice", Cutoff::default());
    // The guard registers its counters when built: with the recorder installed.
    let g = metrics::with_local_recorder(&recorder, || guard(store.clone(), &clock));
    let t = g.issue("alice", &()).await.unwrap();
    g.validate::<()>(&t).await.unwrap();
    g.bump_version("alice").await.unwrap();
    assert!(g.validate::<()>(&t).await.is_err());

    // One snapshot: taking one may reset the recorder's counters.
    let snapshot = snapshotter.snapshot().into_vec();
    let counter = |name: &str, label: Option<(&str, &str)>| -> u64 {
        snapshot
            .iter()
            .find(|(key, _, _, _)| {
                key.key().name() == name
                    && label.is_none_or(|(k, v)| {
                        key.key().labels().any(|l| l.key() == k && l.value() == v)
                    })
            })
            .map(|(_, _, _, value)| match value {
                DebugValue::Counter(n) => *n,
                other => panic!("{name} is not a counter: {other:?}"),
            })
            .unwrap_or(0)
    };
    assert_eq!(
        counter(
            "jwt_revoke_validations_total",
            Some(("outcome", "accepted"))
        ),
        1
    );
    assert_eq!(
        counter(
            "jwt_revoke_validations_total",
            Some(("outcome", "token_revoked"))
        ),
        1
    );
    assert_eq!(
        counter("jwt_revoke_revoked_total", Some(("reason", "version"))),
        1
    );
    assert_eq!(counter("jwt_revoke_revocations_total", None), 1);
    assert_eq!(
        counter("jwt_revoke_cache_total", Some(("result", "hit"))),
        2
    );
}
