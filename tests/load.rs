//! Load: a flood of validly signed tokens for subjects that do not exist
//! stays within the negative-cache bound and does not hammer the store;
//! long runs of validations do not grow memory.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::counting::Counting;
use jwt_revoke::{Algorithm, Cutoff, EncodingKey, FakeClock, Guard, Keys, MemoryStore};

const T0: i64 = 1_800_000_000;

fn forged_by_key_holder(sub: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &serde_json::json!({"sub": sub, "iat": T0, "exp": T0 + 600, "ver": 0}),
        &EncodingKey::from_secret(common::SECRET),
    )
    .unwrap()
}

#[tokio::test]
async fn a_flood_of_unknown_subjects_is_bounded_and_cached_negatively() {
    let store = Arc::new(Counting::new(MemoryStore::with_clock(
        jwt_revoke::FakeClock::new(0),
    )));
    store.inner.insert("alice", Cutoff::default());
    let g = Guard::builder(
        Keys::hmac(Algorithm::HS256, common::SECRET).unwrap(),
        store.clone(),
    )
    .clock(FakeClock::new(T0))
    .max_entries(1_000)
    .max_negative_entries(500)
    .build()
    .unwrap();
    let alice = g.issue("alice", &()).await.unwrap();

    // Repeated waves of the same 400 random subjects: one load each.
    let wave: Vec<String> = (0..400)
        .map(|i| forged_by_key_holder(&format!("ghost-{i:x}-{}", i * 7919)))
        .collect();
    let before = store.loads();
    for _ in 0..10 {
        for t in &wave {
            assert_eq!(
                g.validate::<()>(t).await.unwrap_err().code(),
                "unknown_subject"
            );
        }
    }
    assert_eq!(
        store.loads() - before,
        400,
        "the negative cache absorbs repeats"
    );

    // 20 000 distinct ones: the negative map stays bounded, real users stay.
    for i in 0..20_000 {
        let t = forged_by_key_holder(&format!("flood-{i}"));
        assert_eq!(
            g.validate::<()>(&t).await.unwrap_err().code(),
            "unknown_subject"
        );
        assert!(g.cached_unknown_subjects() <= 500);
    }
    assert!(g.cached_subjects() <= 1_000);
    let loads = store.loads();
    g.validate::<()>(&alice).await.unwrap();
    assert_eq!(
        store.loads(),
        loads,
        "the flood did not evict a real subject"
    );
}

fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    statm
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 4
}

#[tokio::test]
async fn long_runs_of_validations_do_not_grow_memory() {
    let store = MemoryStore::with_clock(jwt_revoke::FakeClock::new(0));
    for i in 0..200 {
        store.insert(format!("user-{i}"), Cutoff::default());
    }
    let clock = FakeClock::new(T0);
    let g = Guard::builder(Keys::hmac(Algorithm::HS256, common::SECRET).unwrap(), store)
        .clock(clock.clone())
        .access_ttl(Duration::from_secs(86_400))
        .max_entries(100)
        .build()
        .unwrap();
    let mut tokens = Vec::new();
    for i in 0..200 {
        tokens.push(g.issue(&format!("user-{i}"), &()).await.unwrap());
    }
    let run = |n: usize| {
        let (g, tokens, clock) = (g.clone(), tokens.clone(), clock.clone());
        async move {
            for k in 0..n {
                // Hits, misses (bound of 100 < 200 users), expiries, revocations.
                let _ = g.validate::<()>(&tokens[k % tokens.len()]).await;
                if k % 1_000 == 0 {
                    clock.advance(Duration::from_secs(31));
                    let _ = g.bump_version(&format!("user-{}", k % 200)).await;
                }
            }
        }
    };
    run(50_000).await; // warm-up: allocator pools, maps at their size
    let before = rss_kib();
    run(300_000).await;
    let grown = rss_kib().saturating_sub(before);
    assert!(
        grown < 8 * 1024,
        "RSS grew by {grown} KiB over 300 000 validations"
    );
}

/// Clients that go away while the store is slow (a timeout, a closed
/// connection) drop their validation mid-way. What the guard kept for those
/// pending loads must go with them: memory stays within the cache bounds
/// whatever the pattern of cancellation.
#[tokio::test]
async fn cancelled_validations_of_distinct_subjects_leave_nothing_behind() {
    let store = Arc::new(Counting::new(MemoryStore::with_clock(
        jwt_revoke::FakeClock::new(0),
    )));
    let g = Guard::builder(
        Keys::hmac(Algorithm::HS256, common::SECRET).unwrap(),
        store.clone(),
    )
    .clock(FakeClock::new(T0))
    .max_entries(1_000)
    .max_negative_entries(1_000)
    .build()
    .unwrap();
    let held = store.hold_loads();
    let round = |from: usize, n: usize| {
        let g = g.clone();
        async move {
            let tasks: Vec<_> = (from..from + n)
                .map(|i| {
                    let (g, t) = (g.clone(), forged_by_key_holder(&format!("gone-{i}")));
                    tokio::spawn(async move { g.validate::<()>(&t).await.map(|_| ()) })
                })
                .collect();
            for _ in 0..4 {
                tokio::task::yield_now().await;
            }
            for t in &tasks {
                t.abort();
            }
            for t in tasks {
                let _ = t.await;
            }
        }
    };
    round(0, 20_000).await; // warm-up: the maps reach their working size
    assert_eq!(g.loads_in_flight(), 0);
    let before = rss_kib();
    for r in 1..=5 {
        round(r * 20_000, 20_000).await;
        assert_eq!(g.loads_in_flight(), 0, "round {r} left pending loads");
    }
    let grown = rss_kib().saturating_sub(before);
    // 100 000 distinct cancelled subjects at the ~136 bytes a leaked flight
    // costs would be over 13 MiB.
    assert!(
        grown < 4 * 1024,
        "RSS grew by {grown} KiB over 100 000 cancelled validations"
    );
    assert!(g.cached_subjects() <= 1_000 && g.cached_unknown_subjects() <= 1_000);
    drop(held);
}
